"""Kernel families (data/kernels.toml): the curves reproduce the published kernel timings they were fitted
to, Marlin's shape holds at the step level, ideal stays a lower bound, and the EP max-load expectation
matches a Monte-Carlo."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rooflm.core import evaluate
from rooflm.core.inputs import setup
from rooflm.core.roofline import efficiency_for, time_op
from rooflm.ops import gemm, moe
from rooflm.ops.cost import Op
from rooflm.specs.hardware import HARDWARE_DIR, hardware_from_text, load_hardware
from rooflm.specs.kernels import kernel_family
from rooflm.specs.quant import load_scheme


def kernel_time(hardware: str, scheme: str, m: float, k: int, n: int, instances: float = 1.0) -> float:
    """One GEMM's kernel time in calibrated mode, launch overhead excluded (benchmarks time the kernel)."""
    q = load_scheme(scheme)
    cost = gemm.linear(m, k, n, weight_bytes_per_el=q.weight_bytes_per_element(k), in_bytes=q.act_bytes,
                       out_bytes=2.0)
    op = Op("g", "gemm", "weight_gemm", 1, cost.scaled(instances), q.compute, (k, n), gemm_m=m,
            instances=instances, family=kernel_family(q))
    hw = load_hardware(hardware)
    t = time_op(op, hw, efficiency_for(hw, "calibrated"))
    return float(t.time_s - t.overhead_s)


def test_families_of_the_schemes() -> None:
    assert kernel_family(None) == "dense"
    assert [kernel_family(load_scheme(s)) for s in ("bf16", "fp8", "fp8-block", "int8", "w8a16", "w4a16", "w4a8",
                                                    "fp4", "mxfp4")] == [
        "dense", "fp8", "fp8-block", "int8", "w8a16", "w4a16", "w4a8", "fp4", "w4a16"]
    assert kernel_family(load_scheme("fp8-block"), grouped=True) == "fp8-block.grouped"


@pytest.mark.parametrize(("scheme", "m", "k", "n", "published_s", "source"), [
    # vllm PR #17126: bf16 N=6144 K=4096 M=1 2.513 TFLOP/s -> 2·6144·4096 / 2.513e12 = 20.0 us
    ("bf16", 1, 4096, 6144, 20.0e-6, "vllm#17126"),
    # vllm PR #49363: bf16 N=12288 K=5376 M=1 2.870 TFLOP/s -> 46.0 us
    ("bf16", 1, 5376, 12288, 46.0e-6, "vllm#49363"),
    # vllm PR #23198 (µs as printed): torch fp16 1×36864×12288 303.2, cutlass fp8 155.2, Machete w4a8 98.2
    ("bf16", 1, 12288, 36864, 303.2e-6, "vllm#23198"),
    ("fp8", 1, 12288, 36864, 155.2e-6, "vllm#23198"),
    ("w4a8", 1, 12288, 36864, 98.2e-6, "vllm#23198"),
    ("w4a8", 1, 73728, 12288, 172.4e-6, "vllm#23198"),
    # vllm PR #17126: bf16 N=6144 K=4096 M=256 544.3 TFLOP/s -> 2·256·6144·4096 / 544.3e12 = 23.7 us
    ("bf16", 256, 4096, 6144, 23.7e-6, "vllm#17126"),
    # DeepGEMM issue #136 (H100): M=64 N=7168 K=16384 51 us; N=2112 K=7168 13 us
    ("fp8-block", 64, 16384, 7168, 51e-6, "DeepGEMM#136"),
    ("fp8-block", 64, 7168, 2112, 13e-6, "DeepGEMM#136"),
    # vllm PR #5514 (H100, CUTLASS int8 W8A8, µs as printed): MKN=(1x4096x4096) 7.5, MKN=(1x4096x22016) 40.0
    ("int8", 1, 4096, 4096, 7.5e-6, "vllm#5514"),
    ("int8", 1, 4096, 22016, 40.0e-6, "vllm#5514"),
])
def test_h100_curves_reproduce_their_kernel_measurements(scheme: str, m: int, k: int, n: int, published_s: float,
                                                         source: str) -> None:
    # Within 12%: the fits are straight lines through scattered points (the sources disagree by that much
    # among themselves, e.g. 1×12288×14336 fp8 129 us vs 122 us on the line).
    assert kernel_time("h100-sxm", scheme, m, k, n) == pytest.approx(published_s, rel=0.12), source


# vllm PR #2497 (A100, Marlin bench.py, group 128): speedup of Marlin over torch fp16 at each batch.
MARLIN_A100 = {1: 3.12, 16: 3.19, 32: 2.28, 64: 1.47, 128: 1.01, 256: 0.74, 1024: 0.66, 4000: 0.61}


@pytest.mark.parametrize("batch", sorted(MARLIN_A100))
def test_a100_marlin_curve_reproduces_the_published_speedups(batch: int) -> None:
    # The benchmark's matrix: 4.626 TFLOP/s in 140 us at batch 1 -> N·K = 4.626e12·1.4e-4 / 2 = 3.24e8,
    # read as 18000 × 18000.
    ratio = kernel_time("a100-sxm", "fp16", batch, 18000, 18000) / kernel_time("a100-sxm", "w4a16", batch, 18000, 18000)
    # 15%: the curves interpolate in log M between the measured batches and use a sharp max() at the knee.
    assert ratio == pytest.approx(MARLIN_A100[batch], rel=0.15)


def decode_time(scheme: str, batch: float, hardware: str = "h100-sxm", gemms_only: bool = False) -> float:
    s = setup("llama-3.1-8b", hardware, quant=scheme, efficiency="calibrated")
    ops = evaluate.decode(s.model, s.quant, s.hardware, s.eff, np.array(batch), np.array(128.0), s.options)
    if gemms_only:  # the layers' weight GEMMs (lm_head's dtype is the checkpoint's choice, not the kernel's)
        ops = [o for o in ops if o.op.kind == "gemm" and o.op.name != "lm_head"]
    return float(evaluate.sum_ops(ops).time_s)


def test_w4a16_follows_marlins_shape_on_h100() -> None:
    """Marlin on H100 (humming PR #2): 2.17x an fp16 GEMM at M=1 for N=K=8192; flat to M≈48 and capped at
    0.45 of the 16-bit peak beyond (vllm PR #2497), where cuBLAS bf16 reaches 0.55-0.80."""
    speedup = {b: decode_time("bf16", b) / decode_time("w4a16", b) for b in (1, 64, 256, 2048)}
    gemm_speedup_1 = decode_time("bf16", 1, gemms_only=True) / decode_time("w4a16", 1, gemms_only=True)
    # Layer GEMMs at batch 1 (128 kernels, 4 per layer): bf16 reads 6.98e9 weights · 2 B = 13.96 GB at
    # 0.90 · 3.35 TB/s = 4.63 ms, W4A16 6.98e9 · 0.5156 B = 3.60 GB at 0.55 · 3.35 = 1.95 ms; each kernel adds
    # 4 us fill and 4 us launch (1.02 ms): (4.63 + 1.02) / (1.95 + 1.02) = 1.90x.
    assert gemm_speedup_1 > 1.85
    assert speedup[1] > speedup[64] > 1.0  # memory-bound: ahead, shrinking as Marlin's compute ceiling nears
    assert speedup[256] < 0.9  # Marlin measured 0.74x at 256
    assert speedup[2048] < 0.8  # Marlin measured ≈0.6x from 1024


def test_w4a8_is_near_fp8_at_batch_1_on_h100() -> None:
    """Small Llama-3.1-8B matrices (8-60 MB of int4) are dominated by W4A8's 15 us fill (vllm PR #23198
    fit), so W4A8 is not the 2x its bytes suggest: within 15% of FP8 either way."""
    ratio = decode_time("fp8", 1) / decode_time("w4a8", 1)
    assert 0.85 < ratio < 1.15


MODELS = st.sampled_from(["llama-3.1-8b", "qwen3-30b-a3b", "mixtral-8x7b", "deepseek-v3"])
HARDWARE = st.sampled_from(["h100-sxm", "a100-sxm", "b200", "mi300x", "h200"])
SCHEMES = st.sampled_from(["bf16", "fp8", "fp8-block", "w4a16", "w4a8", "int8", "mxfp4", "fp4"])


@settings(max_examples=60, deadline=None)
@given(model=MODELS, hardware=HARDWARE, scheme=SCHEMES, batch=st.integers(1, 8192), ep=st.sampled_from([1, 8]))
def test_ideal_is_a_lower_bound_of_calibrated_with_kernel_curves(model: str, hardware: str, scheme: str, batch: int,
                                                                 ep: int) -> None:
    hw = load_hardware(hardware)
    if hw.peak_flops.get(load_scheme(scheme).compute) is None or not hw.peak_flops[load_scheme(scheme).compute].value:
        return  # the device has no roof for the scheme (refused elsewhere)
    layout = {"ep": ep, "dp": ep} if ep > 1 and model != "llama-3.1-8b" else {}
    times = []
    for mode in ("ideal", "calibrated"):
        s = setup(model, hardware, quant=scheme, efficiency=mode, **layout)
        ops = evaluate.decode(s.model, s.quant, s.hardware, s.eff, np.array(float(batch)), np.array(512.0), s.options)
        times.append({o.op.name: float(o.time_s) for o in ops})
    ideal, calibrated = times  # calibrated adds operators (activation quantization), never removes one
    for name, t in ideal.items():
        assert t <= calibrated[name] * (1 + 1e-12), name
    assert sum(ideal.values()) <= sum(calibrated.values()) * (1 + 1e-12)


def test_unknown_kernel_class_is_refused_naming_the_key() -> None:
    text = (HARDWARE_DIR / "h100-sxm.toml").read_text()
    text = text.replace('kernel_class = "hopper"', 'kernel_class = "volta"')
    with pytest.raises(Exception, match="kernel_class"):
        hardware_from_text(text, "test file")


@pytest.mark.parametrize(("tokens", "experts", "top_k", "ep"), [
    (256, 128, 8, 8), (1024, 256, 8, 8), (64, 64, 6, 4), (4096, 32, 4, 16), (512, 8, 2, 2)])
def test_expected_max_load_matches_monte_carlo(tokens: int, experts: int, top_k: int, ep: int) -> None:
    rng = np.random.default_rng(0)
    # 400 trials: the tolerance below scales with 1/sqrt(trials), so fewer trials widen it by a derived amount
    # (4 standard errors, ≈ 0.2·std of the maximum here) rather than by a guess.
    trials = 400
    per_rank = experts // ep
    maxima = np.empty(trials)
    for i in range(trials):
        # each token picks top_k distinct experts uniformly (the top_k smallest of i.i.d. uniforms: argpartition,
        # O(E) rather than a sort); expert e lives on rank e // per_rank
        picks = np.argpartition(rng.random((tokens, experts)), top_k - 1, axis=1)[:, :top_k]
        maxima[i] = np.bincount((picks // per_rank).ravel(), minlength=ep).max()
    mc = maxima.mean()
    mean = tokens * top_k / ep
    s = np.sqrt(tokens * (top_k / ep) * (experts - top_k) / (experts - 1))
    # Tolerance: 4 Monte-Carlo standard errors; Blom's error on E[max of ep normals] (≤ 0.03·s, see
    # expected_max_std_normal); and the skew the normal approximation drops: a load is a sum of T
    # independent bounded picks with skewness γ ≈ (1 − 2p)/sqrt(T·k·p·(1 − p)), p = 1/ep, which moves an
    # upper quantile z by ≈ γ(z² − 1)/6 standard deviations (Cornish-Fisher), z ≤ 3 here.
    p = 1 / ep
    gamma = abs(1 - 2 * p) / np.sqrt(tokens * top_k * p * (1 - p))
    tol = 4 * maxima.std(ddof=1) / np.sqrt(trials) + 0.03 * s + gamma * (3**2 - 1) / 6 * s
    assert float(moe.expected_max_load(tokens, experts, top_k, ep)) == pytest.approx(mc, abs=tol)
    assert mc > mean  # the busiest rank is above the mean: what the EP time is set by


def test_ep_load_factor_is_one_without_ep_and_shrinks_with_tokens() -> None:
    assert moe.ep_load_factor(100.0, 256, 8, 1) == 1.0
    f = [float(moe.ep_load_factor(t, 256, 8, 8)) for t in (16.0, 256.0, 4096.0)]
    # relative spread s·e_8/μ falls like 1/sqrt(T): 16 -> 4096 tokens is 16x fewer in relative terms
    assert f[0] > f[1] > f[2] > 1.0
    assert (f[0] - 1) / (f[2] - 1) == pytest.approx(16.0, rel=0.05)


def test_measured_curve_replaces_the_dequant_model_on_h100() -> None:
    """Regression: the Marlin curve is the kernel's measured time (conversion included), so no vector-op
    dequantization is added on top. qkv_proj of Llama-3.1-8B at M=65: Marlin's compute fraction is 0.45
    between M=64 and 128, so T_math = 32 · 2·65·4096·6144 / (989.4e12 · 0.45) = 240.0 us, nothing more."""
    import rooflm

    r = rooflm.analyze("llama-3.1-8b", "h100-sxm", batch=65, context=128, quant="w4a16", efficiency="calibrated")
    qkv = next(o for o in r.operators if o.name == "qkv_proj")
    assert qkv.compute_time_s == pytest.approx(32 * 2 * 65 * 4096 * 6144 / (989.4e12 * 0.45), rel=1e-9)


def graph_decode_time(scheme: str, batch: float, hardware: str, gemms_only: bool = False) -> float:
    """A decode step as engines run it (CUDA-graph launches: the setup's decode efficiency)."""
    s = setup("llama-3.1-8b", hardware, quant=scheme, efficiency="calibrated")
    ops = evaluate.decode(s.model, s.quant, s.hardware, s.decode_efficiency, np.array(batch), np.array(128.0),
                          s.options)
    if gemms_only:
        ops = [o for o in ops if o.op.kind == "gemm" and o.op.name != "lm_head"]
    return float(evaluate.sum_ops(ops).time_s)


def test_w4a16_follows_marlins_shape_on_a100() -> None:
    """Marlin's measured shape on the device Marlin's batch sweep was measured on (vllm PR #2497: 3.12x fp16 at
    batch 1, 0.74x at 256, ≈0.6x from 1024).

    Layer GEMMs of Llama-3.1-8B at batch 1: 32 × (4096·6144 + 4096·4096 + 4096·28672 + 14336·4096) = 6.98e9 weights.
    bf16: 13.96 GB at ampere.dense 0.73 · 2.039 TB/s = 9.38 ms; W4A16 (0.5 + 2/128 B per weight): 3.60 GB at
    ampere.w4a16 0.585 · 2.039 TB/s = 3.02 ms; each of the 128 kernels adds 4 us fill and 1.3 us graph launch
    (0.68 ms): (9.38 + 0.68) / (3.02 + 0.68) = 2.72x. The whole step gains less: lm_head stays bf16 as GPTQ/AWQ
    checkpoints keep it (1.05 GB at 1.49 TB/s = 0.71 ms), and attention and norms shrink with no weight scheme."""
    gemm_speedup_1 = graph_decode_time("bf16", 1, "a100-sxm", True) / graph_decode_time("w4a16", 1, "a100-sxm", True)
    assert gemm_speedup_1 == pytest.approx(2.72, rel=0.02)
    assert gemm_speedup_1 >= 2.5
    step = {b: graph_decode_time("bf16", b, "a100-sxm") / graph_decode_time("w4a16", b, "a100-sxm") for b in (256, 2048)}
    assert step[256] < 0.9
    assert step[2048] < 0.8


def test_w4a8_on_a100_streams_weights_at_marlins_rate() -> None:
    """Regression: A100 had no W4A8 curve, so W4A8 took the flat 0.81 bandwidth fraction and ran 1.52x
    faster than W4A16 at batch 1 on the same int4 weights. Both are Marlin's main loop on Ampere (QQQ, IST-DASLab/marlin
    PR #31): at batch 1 both read 6.98e9 · 0.5156 B = 3.60 GB at 0.585 · 2.039 TB/s (3.02 ms), so they differ only by
    what is not a weight GEMM (W4A8 also quantizes its activations): within 10%. At batch 1024 W4A8's int8 math
    (twice the fp16 rate) puts it ahead."""
    ratio_1 = graph_decode_time("w4a16", 1, "a100-sxm") / graph_decode_time("w4a8", 1, "a100-sxm")
    assert 0.9 < ratio_1 < 1.1
    assert graph_decode_time("w4a8", 1024, "a100-sxm") < graph_decode_time("w4a16", 1024, "a100-sxm")


def test_dequant_ops_is_refused_where_a_measured_curve_times_the_gemm() -> None:
    """Regression: --dequant-ops was silently ignored on devices whose quantized GEMMs run on measured
    kernel curves (their times include the conversion). It is refused there, naming the field; it still applies
    with flat fractions (an --eta-memory override drops the curves) and in ideal mode."""
    import rooflm
    from rooflm.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="measured kernel curve") as err:
        rooflm.analyze("llama-3.1-8b", "h100-sxm", quant="w4a16", efficiency="calibrated", dequant_ops=2.0)
    assert err.value.field == "dequant_ops"
    # With a flat fraction the vector cost is used: more ops per weight, more time at a compute-heavy batch.
    times = [rooflm.analyze("llama-3.1-8b", "h100-sxm", quant="w4a16", efficiency="calibrated", batch=256,
                            context=128, eta_memory=0.8, dequant_ops=ops).totals.time_s for ops in (0.5, 8.0)]
    assert times[1] > times[0]
    rooflm.analyze("llama-3.1-8b", "h100-sxm", quant="bf16", efficiency="calibrated", dequant_ops=2.0)  # nothing quantized
