"""Calibrated mode with an engine: a MoE layer's routed experts at the engine's measured layer time where that
configuration was measured, the generic grouped family (named) elsewhere, ideal mode still a lower bound."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rooflm import analyze
from rooflm.specs.engine_kernels import ENGINES, engine_tables


def _experts(r) -> dict[str, float]:
    return {o.name: o.time_s for o in r.operators if o.name.startswith("experts")}


def _deepseek(engine: str | None, batch: int = 1, **kw: object):
    return analyze("deepseek-v3", "b200", phase="decode", batch=batch, context=1024, quant="fp8-block", tp=8,
                   efficiency=kw.pop("efficiency", "calibrated"), engine=engine, **kw)  # type: ignore[arg-type]


def test_deepseek_experts_take_the_measured_layer_time() -> None:
    """DeepSeek-V3 FP8 (block) decode, batch 1, TP 8 on B200 with SGLang: 58 MoE layers of the measured TP-8 layer
    at 1 token (36.1 µs in the file, row 23569 of the SGLang table measured 36.13 µs): 58 × 36.1 µs = 2.09 ms, split
    2:1 between gate/up and down, plus one launch per GEMM per layer; the activation and its quantization take no
    time of their own."""
    r = _deepseek("sglang")
    ex = _experts(r)
    table = engine_tables("b200", "sglang")
    assert table is not None
    layer = float(table.moe["fp8-block"].time((7168, 2048, 8, 256, 8, 1), 1.0))
    assert layer == pytest.approx(36.1e-6)
    gemm_time = ex["experts.gate_up_proj"] + ex["experts.down_proj"]
    overhead = sum(o.overhead_time_s for o in r.operators if o.name in ("experts.gate_up_proj", "experts.down_proj"))
    assert overhead > 0.0  # the calibrated launch of each GEMM, as for every kernel
    assert gemm_time - overhead == pytest.approx(58 * layer, rel=1e-9)
    assert ex["experts.swiglu"] == 0.0
    assert ex["experts.gate_up_proj.act_quant"] == 0.0 and ex["experts.down_proj.act_quant"] == 0.0
    assert "deepseek-v3" in r.efficiency_sources["engine_moe"]


def test_an_unmeasured_layout_keeps_the_generic_family_and_says_so() -> None:
    """Skewed routing (hot experts 4× as likely) was never measured (the files keep balanced routing): the generic
    family prices the experts, the same times as without an engine, and the sources say why."""
    plain = _deepseek(None, hot_expert_factor=4.0)
    engine = _deepseek("vllm", hot_expert_factor=4.0)
    assert "skewed routing" in engine.efficiency_sources["engine_moe"]
    names = [n for n in _experts(plain) if "proj" in n and "act_quant" not in n]
    for name in names:
        assert _experts(engine)[name] == _experts(plain)[name]


def test_a_model_without_that_scheme_measured_says_so() -> None:
    """SGLang on H200 measured no per-tensor fp8 MoE layers (bf16, fp8-block, mxfp4 only)."""
    r = analyze("qwen3-30b-a3b", "h200", phase="decode", batch=8, context=1024, quant="fp8", efficiency="calibrated",
                engine="sglang")
    assert "no measured MoE layers in fp8" in r.efficiency_sources["engine_moe"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(engine=st.sampled_from(ENGINES), device=st.sampled_from(["h100-sxm", "h200", "b200"]),
       model=st.sampled_from(["qwen3-30b-a3b", "mixtral-8x7b", "deepseek-v3"]),
       tp=st.sampled_from([1, 2, 4, 8]), batch=st.integers(1, 512))
def test_ideal_stays_a_lower_bound_of_every_engines_moe_layer(engine: str, device: str, model: str, tp: int,
                                                               batch: int) -> None:
    quant = "fp8-block" if model == "deepseek-v3" else "bf16"
    kw = {"phase": "decode", "batch": batch, "context": 512, "quant": quant, "tp": tp}
    ideal = analyze(model, device, **kw)  # type: ignore[arg-type]
    if ideal.memory.fits is False:
        return
    measured = analyze(model, device, efficiency="calibrated", engine=engine, **kw)  # type: ignore[arg-type]
    for name, t in _experts(measured).items():
        if name.endswith(("gate_up_proj", "down_proj")):
            assert t >= _experts(ideal)[name] * (1 - 1e-12), (name, t)
    assert measured.totals.time_s >= ideal.totals.time_s
    assert np.isfinite(measured.totals.time_s)


def test_a_layout_between_measured_ones_keeps_the_generic_family() -> None:
    """Qwen3-235B-A22B bf16 on B200 with vLLM: its table measured expert TP 1, 2 and 4 (EP 1) but not TP 8, and
    nothing is interpolated between configurations: the generic family prices TP 8, and the sources list what was
    measured."""
    kw = {"phase": "decode", "batch": 8, "context": 1024, "tp": 8, "efficiency": "calibrated"}
    r = analyze("qwen3-235b-a22b", "b200", engine="vllm", **kw)  # type: ignore[arg-type]
    note = r.efficiency_sources["engine_moe"]
    assert "was not measured" in note and "2x1" in note and "4x1" in note
    assert _experts(r)["experts.gate_up_proj"] == _experts(analyze("qwen3-235b-a22b", "b200", **kw))[  # type: ignore[arg-type]
        "experts.gate_up_proj"]
