"""validate --quant's measurement code at tiny sizes: kernels against a float reference, bytes by hand, speed-ups."""

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from rooflm.cli import app
from rooflm.cli import measure_quant as quant_cli
from rooflm.measure.configs import tiny_config
from rooflm.measure.quant import QuantSample, available, dequantized, matmul, quantize, speedups, weight_bytes

runner = CliRunner()
K, N, M = 256, 64, 3


def _weights(torch: Any) -> Any:
    torch.manual_seed(0)
    return torch.randn(N, K) * 0.02


@pytest.mark.parametrize("scheme", ["w8a16", "w4a16"])
def test_kernel_matches_a_float_reference(scheme: str, torch: Any) -> None:
    if scheme not in available(torch):
        pytest.skip(f"this PyTorch has no CPU kernel for {scheme}")
    qw = quantize(torch, _weights(torch), scheme, keep_codes=True)
    x = torch.randn(M, K, dtype=torch.bfloat16)
    reference = x.float() @ dequantized(torch, qw).t()
    y = matmul(torch, x, qw)
    assert y.shape == (M, N) and y.dtype == torch.bfloat16
    # bf16 output: 8 significant bits, so ≤ 2^-8 of the largest value plus accumulation-order noise.
    assert (y.float() - reference).abs().max() <= 2e-2 * reference.abs().max()
    # And the quantization itself is close to the original weights: int8 within half a step of 1/127 of each row's
    # max, int4 within half a step of 1/15 of each group's range.
    err = (dequantized(torch, qw) - _weights(torch)).abs().max()
    assert err <= (0.5 / 127 if scheme == "w8a16" else 0.5 / 15) * 2 * _weights(torch).abs().max() + 1e-3


def test_bytes_by_hand(torch: Any) -> None:
    # K = 256, N = 64: bf16 2 × 16,384 = 32,768 B; int8 16,384 + a bf16 scale per column (128 B) = 16,512 B;
    # int4 8,192 + (256 / 128 groups × 64 columns) × (bf16 scale + bf16 zero = 4 B) = 8,192 + 512 = 8,704 B.
    assert weight_bytes(K, N, "bf16") == 32_768
    assert weight_bytes(K, N, "w8a16") == 16_512
    assert weight_bytes(K, N, "w4a16") == 8_704
    for scheme in available(torch):
        assert quantize(torch, _weights(torch), scheme).nbytes == weight_bytes(K, N, scheme)


def test_speedups_pair_each_scheme_with_bf16() -> None:
    samples = [QuantSample("decode", "bf16", 1, 4.0, 0.010, 0.0, 0.008, 0.006),
               QuantSample("decode", "w4a16", 1, 1.0, 0.004, 0.0, 0.002, 0.0015),
               QuantSample("decode", "w4a16", 8, 1.0, 0.004, 0.0, 0.002, 0.0015)]  # no bf16 at batch 8: skipped
    (g,) = speedups(samples)
    assert (g.measured, g.predicted, g.ideal) == pytest.approx((2.5, 4.0, 4.0))
    assert g.error == pytest.approx(4.0 / 2.5 - 1)


def test_cli_end_to_end_at_tiny_sizes(monkeypatch: pytest.MonkeyPatch, torch: Any) -> None:
    monkeypatch.setattr(quant_cli, "quant_model", lambda quick: ("tiny", tiny_config(2)))
    monkeypatch.setattr(quant_cli, "BATCHES", {True: [1, 4], False: [1, 4]})
    monkeypatch.setattr(quant_cli, "past_cache_bytes", lambda llc, memory: 4e6)  # a few copies, not 1 GiB
    result = runner.invoke(app, ["validate", "--quant", "--quick", "--hardware", "xeon-8480", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    schemes = available(torch)
    assert len(doc["samples"]) == 2 * 2 * len(schemes)  # {gemm, decode} × 2 batches × schemes
    for s in doc["samples"]:
        assert s["measured_s"] > 0 and s["predicted_s"] > 0 and s["ideal_s"] <= s["predicted_s"] * 1.0001
    assert set(doc["error"]) == set(schemes) - {"bf16"}
    # In the ideal mode a memory-bound decode GEMM's speed-up is the bytes' ratio: w4a16 (4.125 bits) ≈ 3.9× at M=1.
    w4 = [g for g in doc["speedups"] if g["scheme"] == "w4a16" and g["batch"] == 1 and g["case"] == "gemm"]
    if w4:
        assert w4[0]["ideal"] == pytest.approx(16 / 4.125, rel=0.05)
    table = runner.invoke(app, ["validate", "--quant", "--quick", "--hardware", "xeon-8480"])
    assert table.exit_code == 0 and "speed-up error" in table.stdout


def test_quant_refuses_other_modes(torch: Any) -> None:
    result = runner.invoke(app, ["validate", "--quant", "--models", "dense-tiny"])
    assert result.exit_code == 2 and "--quant" in result.output


def test_cpu_time_leaves_out_waiting() -> None:
    import time

    from rooflm.measure.timing import time_fn

    # Sleeping holds no core: 20 ms of wall time is (almost) no CPU time, as another process's turn on the core is not.
    t = time_fn(lambda: time.sleep(0.02), warmup=0, repeats=3, clock=time.process_time)
    assert t.median_s < 0.005 and t.repeats == 3
