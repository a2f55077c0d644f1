"""The MoE routing maths lives in graph.expert_load; routed-expert GEMMs are found by module, not by name."""

import pytest

from rooflm.core import graph
from rooflm.core.inputs import setup
from rooflm.specs.parallel import Parallelism


def test_expert_load_uniform_by_hand() -> None:
    # Mixtral: 8 experts, top-2. 4 tokens each miss an expert with probability 3/4:
    # hit = 8·(1 − (3/4)^4) = 8·175/256 = 5.46875; tokens per hit expert = 4·2 / 5.46875 = 1.462857…
    s = setup("mixtral-8x7b", "h100-sxm")
    load = graph.expert_load(s.model, 4.0, s.options)
    assert load.experts_hit == pytest.approx(5.46875)
    assert load.tokens_per_expert == pytest.approx(8 / 5.46875)


def test_under_ep_a_device_routes_every_replica_s_tokens() -> None:
    # tp 1 × dp 4 with ep 4: a device's MoE layer serves the 4 replicas' tokens; without EP only its own.
    assert graph.moe_group_tokens(3.0, Parallelism(tp=1, ep=4, pp=1, dp=4)) == 12.0
    assert graph.moe_group_tokens(3.0, Parallelism(tp=1, ep=1, pp=1, dp=4)) == 3.0


def test_routed_expert_gemms_exclude_the_shared_experts_and_the_router() -> None:
    s = setup("deepseek-v3", "h100-sxm", tp=8, ep=8)
    ops = graph.decode_ops(s.model, s.quant, 8.0, 1024.0, s.options)
    routed = {o.name for o in ops if graph.is_routed_expert_gemm(o)}
    assert routed and all(o.startswith("experts") for o in routed)
    assert not any("shared" in name or "router" in name for name in routed)
