"""`rooflm measure` and `rooflm validate` from the command line: JSON fields, and one-line errors with exit 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rooflm.cli import app
from rooflm.measure import bench

runner = CliRunner()
MiB = 2**20


def test_measure_without_torch_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    result = runner.invoke(app, ["measure", "--quick"])
    assert result.exit_code == 2
    assert "needs PyTorch" in result.stderr and "pip install 'rooflm[measure]'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_measure_refuses_a_non_toml_output() -> None:
    pytest.importorskip("torch")
    result = runner.invoke(app, ["measure", "--quick", "-o", "out.txt"])
    assert result.exit_code == 2
    assert ".toml" in result.stderr


def _tiny_plan(machine: object, quick: bool) -> bench.Plan:
    return bench.Plan(device="cpu", bandwidth_bytes=(16 * MiB,), matmul_size=128, matmul_dtypes=("bf16",),
                      curve_dtypes=("bf16",), curve_m=(1, 128), layer=(128, 256), pool_bytes=16 * MiB, repeats=3,
                      quick=True, eager_layers=(1, 2), dispatch_inner=10)


@pytest.fixture(scope="module")
def measured_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """`rooflm measure --json -o FILE` on a tiny plan (the real one takes tens of seconds). Measured once for the
    module (3-8 s on a 2-core machine, mostly the two eager transformers decoders): its readers only read the file
    and the JSON (conftest.WORKER_UNITS runs this module's tests on one xdist worker)."""
    pytest.importorskip("torch")
    path = tmp_path_factory.mktemp("measure") / "measured.toml"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bench, "make_plan", _tiny_plan)
        result = runner.invoke(app, ["measure", "--quick", "--json", "-o", str(path)])
    assert result.exit_code == 0, result.output
    return path, json.loads(result.stdout)


def test_measure_json_and_hardware_file(measured_file: tuple[Path, dict]) -> None:
    path, doc = measured_file
    assert doc["memory_bandwidth"] > 0
    assert doc["peak_flops"]["bf16"] > 0
    assert {"machine", "raw", "gemm_curve", "efficiency", "ridge"} <= set(doc)
    assert doc["hardware_file"] == str(path)
    shown = runner.invoke(app, ["hardware", "show", str(path), "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["memory_bandwidth"] == pytest.approx(doc["memory_bandwidth"], rel=1e-5)


def test_validate_json_on_the_tiny_model(measured_file: tuple[Path, dict]) -> None:
    pytest.importorskip("transformers")
    path, _ = measured_file
    result = runner.invoke(app, ["validate", "--quick", "--json", "--models", "dense-tiny", "--no-gemms",
                                 "--hardware", str(path)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["cases"], doc
    for case in doc["cases"]:
        assert {"model", "phase", "batch", "measured_s", "predicted_s", "ideal_s", "predicted_bound"} <= set(case)
        assert case["measured_s"] > 0 and case["predicted_s"] > 0 and case["ideal_s"] > 0
    # The summary's median error recomputed from the cases' own times: |predicted − measured| / measured, the median
    # over all cases, the largest as the worst, and the ideal (a lower bound) counted when it ran slower than measured.
    errors = sorted(abs(c["predicted_s"] - c["measured_s"]) / c["measured_s"] for c in doc["cases"])
    n = len(errors)
    median = errors[n // 2] if n % 2 else (errors[n // 2 - 1] + errors[n // 2]) / 2
    assert doc["median_abs_error"] == pytest.approx(median, rel=1e-12)
    assert doc["worst_abs_error"] == pytest.approx(errors[-1], rel=1e-12)
    assert doc["ideal_violations"] == sum(c["ideal_s"] > c["measured_s"] for c in doc["cases"])
    assert {c["phase"] for c in doc["cases"]} == {"decode", "prefill"}


def test_validate_rejects_an_unknown_model() -> None:
    pytest.importorskip("transformers")
    result = runner.invoke(app, ["validate", "--models", "nope", "--hardware", "xeon-8480"])
    assert result.exit_code == 2
    assert "dense-small" in result.stderr


def test_validate_end_to_end_with_gemms_and_a_written_table(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`rooflm validate --quick` with its GEMM cases (the path that crashed when OpTiming lost `bound`) and
    `--write-table`, on the catalog's xeon-8480 so nothing is measured first: one measured run (the tiny model at quick
    sizes), two checks. The GEMM grid is shrunk to two small shapes: the quick grid runs 8 GEMMs of up to 17 GFLOP
    each, tens of seconds on a 2-core CI machine.
    The table holds one row per measured case (its median): `validate --table` on it predicts each row exactly as the
    run did (same config, same hardware, calibrated mode), and `rooflm fit` reads it."""
    pytest.importorskip("transformers")
    from rooflm.measure import runner as measure_runner

    small = measure_runner.GemmGrid(m=(1, 64), kn=((2048, 2048),))
    monkeypatch.setattr(measure_runner, "gemm_grid", lambda quick: small)
    table = tmp_path / "steps.csv"
    result = runner.invoke(app, ["validate", "--quick", "--json", "--models", "dense-tiny", "--hardware", "xeon-8480",
                                 "--write-table", str(table)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    gemms = {g["m"]: g for g in doc["gemm"]["cases"]}
    assert set(gemms) == {1, 64}
    # M=1, K=N=2048, bf16: bytes = 2·(2048·2048 + 1·2048 + 1·2048) = 8 396 800 B; FLOPs = 2·2048·2048 = 8.39 MFLOP,
    # so 1 FLOP/B, far below the ridge (114.7 TFLOP/s / 307.2 GB/s ≈ 373): memory-bound, and the ideal time is the
    # bytes over the datasheet bandwidth, 8 396 800 / 307.2e9 s = 27.33 µs.
    assert gemms[1]["ideal_s"] == pytest.approx(8_396_800 / 307.2e9, rel=1e-9)
    assert gemms[1]["predicted_bound"] == "memory"
    assert gemms[1]["measured_s"] > 0

    cases = doc["cases"]
    assert (tmp_path / "steps.models" / "dense-tiny" / "config.json").is_file()
    checked = runner.invoke(app, ["validate", "--table", str(table), "--json"])
    assert checked.exit_code == 0, checked.output
    rows = json.loads(checked.stdout)["points"]
    assert len(rows) == len(cases)
    for case, row in zip(cases, rows, strict=True):
        assert (row["phase"], row["batch"]) == (case["phase"], case["batch"])
        assert row["measured_s"] == pytest.approx(case["measured_s"], rel=1e-5)  # written with 6 digits
        assert row["predicted_s"] == pytest.approx(case["predicted_s"], rel=1e-9)
    fitted = runner.invoke(app, ["fit", str(table), "--params", "fixed", "--json"])
    assert fitted.exit_code == 0, fitted.output
