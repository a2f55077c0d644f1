"""Calibrated mode with an engine: dense GEMMs at the engine's measured times, everything else as before, and
ideal mode still a lower bound."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rooflm import analyze
from rooflm.core.graph import GraphBuilder
from rooflm.core.inputs import with_engine
from rooflm.core.roofline import efficiency_for, time_op
from rooflm.errors import InvalidInputError
from rooflm.specs.engine_kernels import ENGINES, gemm_table
from rooflm.specs.hardware import load_hardware
from rooflm.specs.hf_config import load_model
from rooflm.specs.quant import load_scheme

MODEL = load_model("llama-3.1-8b")
SCHEMES = {"bf16": "dense", "fp8": "fp8", "fp8-block": "fp8-block", "fp4": "fp4"}


def _gemm(scheme: str, m: np.ndarray, k: int, n: int):
    return GraphBuilder(MODEL, load_scheme(scheme, None, MODEL)).linear("g", m, k, n, count=3, module="mlp")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(device=st.sampled_from(["h100-sxm", "h200", "b200"]), engine=st.sampled_from(ENGINES),
       scheme=st.sampled_from(sorted(SCHEMES)),
       m=st.lists(st.integers(1, 70000), min_size=1, max_size=4),
       k=st.integers(16, 131072), n=st.integers(16, 131072))
def test_ideal_stays_a_lower_bound_of_every_engines_gemm(device: str, engine: str, scheme: str, m: list[int],
                                                          k: int, n: int) -> None:
    hw = load_hardware(device)
    if scheme == "fp4" and device != "b200":
        return  # Hopper has no fp4 roof
    op = _gemm(scheme, np.asarray(m, dtype=float), k, n)
    engine_eff = with_engine(efficiency_for(hw, "calibrated"), hw, engine)
    measured = time_op(op, hw, engine_eff).time_s
    ideal = time_op(op, hw, efficiency_for(hw, "ideal")).time_s
    assert np.all(measured >= ideal), (measured, ideal)


def test_a_dense_gemm_takes_the_engines_measured_time() -> None:
    """3 instances (layers) of a [M, 4096] x [4096, 14336] bf16 GEMM on H100 with vLLM: 3 x the table's time, plus
    the calibrated launch overhead of 3 kernels."""
    hw = load_hardware("h100-sxm")
    eff = with_engine(efficiency_for(hw, "calibrated"), hw, "vllm")
    m = np.array([1.0, 64.0, 4096.0])
    t = time_op(_gemm("bf16", m, 4096, 14336), hw, eff)
    table = gemm_table("h100-sxm", "vllm", "dense")
    assert table is not None
    expected = 3 * table.time(m, 14336, 4096)
    np.testing.assert_allclose(np.maximum(t.compute_s, t.memory_s), expected, rtol=1e-12)
    np.testing.assert_allclose(t.overhead_s, 3 * eff.kernel_overhead_s)
    # M = 1 moves 117 MB of weights: memory-bound at the datasheet figures, so its measured time is booked there.
    assert t.memory_s[0] == pytest.approx(expected[0]) and t.compute_s[0] < t.memory_s[0]


def test_batched_and_grouped_gemms_keep_the_generic_families() -> None:
    hw = load_hardware("h100-sxm")
    plain, engine = efficiency_for(hw, "calibrated"), with_engine(efficiency_for(hw, "calibrated"), hw, "sglang")
    builder = GraphBuilder(MODEL, load_scheme("bf16", None, MODEL))
    for op in (builder.linear("absorb", 8.0, 128, 512, 1, instances=16),
               builder.linear("experts", 8.0, 4096, 1024, 1, module="experts")):
        assert engine.engine_table(op) is None
        assert float(time_op(op, hw, engine).time_s) == float(time_op(op, hw, plain).time_s)


def _decode(**kw: object) -> float:
    return analyze("llama-3.1-8b", kw.pop("hardware", "h100-sxm"), phase="decode", batch=8, context=2048,
                   **kw).totals.time_s  # type: ignore[arg-type]


def test_the_report_names_the_engine_and_what_it_priced() -> None:
    r = analyze("llama-3.1-8b", "h200", efficiency="calibrated", engine="TRTLLM", quant="fp8")
    assert r.engine == "trtllm"
    assert r.efficiency_sources["engine"].startswith("trtllm 1.3.0rc20 on NVIDIA H200")
    assert "Apache License 2.0" in r.efficiency_sources["engine"]
    assert _decode(efficiency="calibrated", engine="trtllm", hardware="h200") != _decode(efficiency="calibrated",
                                                                                         hardware="h200")


@pytest.mark.parametrize(("hardware", "engine", "says"), [
    ("a100-sxm", "vllm", "no measured kernel tables for a100-sxm"),
    ("h100-sxm", "vllm@0.19", "the tables for h100-sxm are vllm 0.24.0"),
])
def test_without_a_table_the_generic_families_price_it_and_say_so(hardware: str, engine: str, says: str) -> None:
    r = analyze("llama-3.1-8b", hardware, efficiency="calibrated", engine=engine)
    assert says in r.efficiency_sources["engine"]
    assert _decode(efficiency="calibrated", engine=engine, hardware=hardware) == _decode(efficiency="calibrated",
                                                                                         hardware=hardware)


def test_ideal_mode_is_untouched_by_an_engine() -> None:
    assert _decode(engine="sglang") == _decode()
    assert "ideal mode" in analyze("llama-3.1-8b", "h100-sxm", engine="sglang").efficiency_sources["engine"]


def test_an_engine_with_flat_overrides_or_unknown_is_refused() -> None:
    with pytest.raises(InvalidInputError) as info:
        analyze("llama-3.1-8b", "h100-sxm", efficiency="calibrated", engine="vllm", eta_memory=0.8)
    assert info.value.field == "engine"
    with pytest.raises(InvalidInputError) as info:
        analyze("llama-3.1-8b", "h100-sxm", engine="tensorrt")
    assert info.value.field == "engine"


def _act_quant_times(hardware: str, engine: str | None, quant: str) -> dict[str, float]:
    r = analyze("llama-3.1-8b", hardware, phase="decode", batch=8, context=2048, quant=quant,
                efficiency="calibrated", engine=engine)
    return {o.name: o.time_s for o in r.operators if o.name.endswith(".act_quant")}


@pytest.mark.parametrize(("hardware", "engine", "quant", "included"), [
    # TensorRT-LLM's rows time its Linear module (kernel_source torch_flow), which quantizes the input first.
    ("h200", "trtllm", "fp8", True),
    # vLLM's rows time its linear kernel classes (CutlassFP8ScaledMMLinearKernel), which quantize the input first.
    ("h100-sxm", "vllm", "fp8", True),
    # SGLang's B200 block-fp8 rows: collection_meta.yaml says "the timed op is act-quant + gemm".
    ("b200", "sglang", "fp8-block", True),
    # SGLang's H200 per-tensor fp8 rows name the GEMM kernel alone (sglang_sgl_kernel_fp8_scaled_mm): rooflm keeps
    # its own quantization pass.
    ("h200", "sglang", "fp8", False),
])
def test_the_input_quantization_is_counted_once(hardware: str, engine: str, quant: str, included: bool) -> None:
    plain = _act_quant_times(hardware, None, quant)
    with_engine_ = _act_quant_times(hardware, engine, quant)
    assert plain and all(t > 0 for t in plain.values())
    table = gemm_table(hardware, engine, quant if quant != "bf16" else "dense")
    assert table is not None and table.act_quant_included is included
    assert table.source["act_quant_evidence"]
    for name, t in with_engine_.items():
        assert (t == 0.0) is included, (name, t)
