import pytest

import rooflm


def test_experts_cross_the_ridge_about_e_over_k_times_later() -> None:
    # Qwen3-30B-A3B, 128 experts of gate_up 2048 x 1536 and down 768 x 2048 (W = 4,718,592 weights),
    # bf16 on H100 (ridge 295.3). A dense pair of GEMMs of that shape crosses where
    # 2·M·W / P = (2·W + 2·M·S) / BW with S = 2048+1536+768+2048 = 6400 activation elements per token:
    # M* = W / (W / 295.3 − S) = 492.6 tokens. An expert sees ≈ B·8/128 tokens once all are hit,
    # so the batch must reach ≈ 492.6 · 128/8 = 7,882: E/k = 16 times the dense crossover.
    cb = rooflm.critical_batch("qwen3-30b-a3b", "h100-sxm", context=128)
    assert cb.expert_critical_batch == pytest.approx(7882, rel=0.01)


def test_expert_crossover_is_where_tokens_per_expert_reach_the_ridge() -> None:
    cb = rooflm.critical_batch("mixtral-8x7b", "h100-sxm", context=128)
    # By hand: an expert of W = 3 * 4096 * 14336 = 176,160,768 weights and S = 4096 + 2 * 14336 + 14336 + 4096 =
    # 51,200 activation elements per token crosses the H100 bf16 ridge (989.4 / 3.35 = 295.34) at
    # M* = W / (W / 295.34 − S) = 323.08 tokens; with all 8 experts hit each sees B * 2/8, so B = ⌈4 * 323.08⌉ = 1293.
    assert cb.expert_critical_batch == 1293
    below = rooflm.analyze("mixtral-8x7b", "h100-sxm", batch=cb.expert_critical_batch - 1, context=128)
    at = rooflm.analyze("mixtral-8x7b", "h100-sxm", batch=cb.expert_critical_batch, context=128)

    def experts_compute_bound(r: rooflm.Report) -> bool:
        gemms = [o for o in r.operators if o.name.startswith("experts") and o.kind == "gemm"]
        return sum(o.compute_time_s for o in gemms) >= sum(o.memory_time_s for o in gemms)

    assert not experts_compute_bound(below) and experts_compute_bound(at)


def test_expert_parallelism_lets_the_global_batch_reach_the_expert_crossover() -> None:
    # On one device Mixtral-8x7B in bf16 (93 GB) does not even fit; with EP=8 each device holds one
    # expert per layer and the global batch that fits at 2k context grows past the expert crossover.
    ep = rooflm.critical_batch("mixtral-8x7b", "h100-sxm", context=2048, dp=8, ep=8)
    # With EP the step waits for the busiest of the 8 ranks: a rank's load is B * 2/8 tokens on average with standard
    # deviation s = sqrt(B * (2/8) * (8 − 2)/(8 − 1)), and the busiest of 8 sits ≈ 1.42 s above (E[max of 8 standard
    # normals] = 1.4236; Blom's 1.4335 gives the same batch). It reaches the 323.08-token crossover above at
    # B = 1201: 300.25 + 1.42 * 16.04 = 323.1 (B = 1200: 300 + 22.8 = 322.8, short): earlier than one device's 1293.
    assert ep.expert_critical_batch == 1201
    assert ep.max_batch >= ep.expert_critical_batch
    r = rooflm.analyze("mixtral-8x7b", "h100-sxm", batch=ep.expert_critical_batch, context=2048, dp=8, ep=8)
    experts = [o for o in r.operators if o.name.startswith("experts") and o.kind == "gemm"]
    assert sum(o.compute_time_s for o in experts) >= sum(o.memory_time_s for o in experts)
    assert r.memory.fits
