"""analyze and sweep keep the roofline (ideal) as their subject and carry the calibrated expectation beside it: the
same step priced in calibrated mode, exactly what analyze(..., efficiency="calibrated") gives."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import rooflm
from rooflm.cli import app
from rooflm.cli.render import sweep_table

runner = CliRunner()
STEPS = [
    {"phase": "decode", "batch": 1, "context": 1024},
    {"phase": "decode", "batch": 256, "context": 4096, "quant": "fp8"},
    {"phase": "prefill", "batch": 2, "prompt_len": 2048, "tp": 2},
    {"phase": "e2e", "batch": 4, "prompt_len": 512, "gen_len": 16},
]


@pytest.mark.parametrize("step", STEPS, ids=[s["phase"] + str(s["batch"]) for s in STEPS])
def test_the_expectation_is_calibrated_analyze_of_the_same_step(step: dict[str, object]) -> None:
    ideal = rooflm.analyze("llama-3.1-8b", "h100-sxm", **step)  # type: ignore[arg-type]
    calibrated = rooflm.analyze("llama-3.1-8b", "h100-sxm", efficiency="calibrated", **step)  # type: ignore[arg-type]
    e = ideal.totals.calibrated
    assert ideal.efficiency == "ideal" and e is not None and e.efficiency == "calibrated"
    # The roofline is the physical bound: η ≤ 1 and the overheads only add, so what an engine takes is no less.
    assert e.time_s >= ideal.totals.time_s
    t = calibrated.totals
    assert (e.time_s, e.bound, e.tokens_per_s) == (pytest.approx(t.time_s, rel=1e-12), t.bound,
                                                   pytest.approx(t.tokens_per_s, rel=1e-12))
    assert (e.ttft_s is None) == (step["phase"] != "e2e")
    if step["phase"] == "e2e":
        assert (e.ttft_s, e.tpot_s) == (pytest.approx(t.ttft_s, rel=1e-12), pytest.approx(t.tpot_s, rel=1e-12))
    # A calibrated report is its own expectation: nothing beside it.
    assert t.calibrated is None


def test_batch_one_decode_by_hand() -> None:
    """Llama-3.1-8B bf16, batch 1 at context 1024 on an H100: the roofline reads 15.16 GB at 3.35 TB/s = 4.52 ms;
    calibrated mode adds the kernels' sustained fractions, CUDA-graph launches and the 0.25 ms step cost: more."""
    r = rooflm.analyze("llama-3.1-8b", "h100-sxm", batch=1, context=1024)
    assert r.totals.time_s == pytest.approx(15.156e9 / 3.35e12, rel=2e-3)
    assert r.totals.calibrated is not None and r.totals.calibrated.time_s > r.totals.time_s + 0.25e-3


def test_keywords_calibrated_mode_refuses_leave_no_expectation() -> None:
    # A dequantization override on a measured kernel curve is refused in calibrated mode; the ideal step still runs.
    r = rooflm.analyze("llama-3.1-8b", "h100-sxm", quant="w4a16", dequant_ops=2.0)
    assert r.efficiency == "ideal" and r.totals.calibrated is None


def test_the_json_and_the_table_carry_it() -> None:
    doc = json.loads(runner.invoke(app, ["analyze", "--batch", "8", "--json"]).stdout)
    direct = rooflm.analyze("llama-3.1-8b", "h100-sxm", batch=8, efficiency="calibrated").totals
    assert doc["efficiency"] == "ideal"
    assert doc["totals"]["calibrated"] == {"efficiency": "calibrated", "time_s": direct.time_s, "bound": direct.bound,
                                           "tokens_per_s": direct.tokens_per_s, "ttft_s": None, "tpot_s": None}
    table = runner.invoke(app, ["analyze", "--batch", "8"], env={"COLUMNS": "200"})
    words = " ".join(table.stdout.split())  # a narrow console folds the title
    assert table.exit_code == 0 and "expected (calibrated)" in words and "ideal mode" in words
    assert rooflm.units.seconds(direct.time_s) in words


def test_an_ideal_sweep_has_the_calibrated_time_of_every_point() -> None:
    batches, contexts = [1, 16, 512], [512, 8192]
    s = rooflm.sweep("llama-3.1-8b", "h100-sxm", batch=batches, context=contexts)
    assert s.efficiency == "ideal"
    i = 0
    for b in batches:  # batch-major, as the grid is numbered
        for c in contexts:
            t = rooflm.analyze("llama-3.1-8b", "h100-sxm", batch=b, context=c, efficiency="calibrated").totals
            assert s.columns["calibrated_time_s"][i] == pytest.approx(t.time_s, rel=1e-9)
            assert s.columns["calibrated_bound"][i] == t.bound
            i += 1
    assert np.all(s.columns["calibrated_time_s"] >= s.columns["time_s"])
    # A calibrated sweep is its own expectation; the CSV and the table of an ideal one show the column.
    assert "calibrated_time_s" not in rooflm.sweep("llama-3.1-8b", "h100-sxm", batch=[1], efficiency="calibrated").columns
    assert "calibrated_time_s,calibrated_bound" in runner.invoke(app, ["sweep", "--batch", "1,2", "--csv"]).stdout
    table = sweep_table(s)  # its columns, whatever the console's width
    assert [c.header for c in table.columns][5:] == ["bound", "calibrated", "cal. bound", "fits"]
    assert "ideal mode" in str(table.title)
