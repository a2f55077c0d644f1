"""What plan reports per user: interactivity (1 / TPOT) beside end-to-end output tokens/s, which counts the wait for
the first token; and the TTFT target it meets when none is given."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

import rooflm
from rooflm.cli import app
from rooflm.serving.plan_space import DEFAULT_TTFT_SLO_S

runner = CliRunner()
# One H100, fp8: 512 requests running at once. 16 users barely load it; 4,096 users fill it and queue the rest for
# their first token (a closed loop's cycle is N / X: 4,096 users at ~200 requests/s wait ~20 s).
SEARCH = {"gpus": 1, "prompt_len": 256, "gen_len": 32, "quant": "fp8", "kv_dtype": "fp8", "max_running": [512],
          "max_tokens_per_step": [2048], "concurrency": [16, 4096], "workers": 1}


@pytest.fixture(scope="module")
def default() -> rooflm.PlanResult:
    return rooflm.plan("llama-3.1-8b", "h100-sxm", **SEARCH)  # type: ignore[arg-type]


def test_e2e_tokens_per_user_is_the_formula_on_the_points_own_fields(default: rooflm.PlanResult) -> None:
    points = [*default.pareto, *([default.best] if default.best else [])]
    assert points
    for p in points:
        m = p.metrics
        ttft, tpot = m["ttft_s"], m["tpot_s"]
        assert ttft is not None and tpot is not None
        # gen_len / (TTFT + gen_len × TPOT), 32 output tokens per request
        assert m["e2e_output_tokens_per_s_per_user"] == pytest.approx(32 / (ttft + 32 * tpot), rel=1e-12)
        assert m["output_tokens_per_s_per_user"] == pytest.approx(1 / tpot, rel=1e-9)  # interactivity, unchanged
        # The first token's wait only lowers it.
        assert m["e2e_output_tokens_per_s_per_user"] < m["output_tokens_per_s_per_user"]  # type: ignore[operator]
    doc = default.to_json_dict()
    assert all("e2e_output_tokens_per_s_per_user" in p for p in doc["pareto"])  # type: ignore[union-attr]


def test_without_a_target_the_default_ttft_target_picks_the_best(default: rooflm.PlanResult) -> None:
    assert DEFAULT_TTFT_SLO_S == 10.0
    doc = default.to_json_dict()
    assert (doc["ttft_slo_s"], doc["ttft_slo_default"], doc["efficiency"]) == (10.0, True, "calibrated")
    assert any("default TTFT target of 10 s" in n for n in default.notes)
    assert default.best is not None and default.best.config["concurrency"] == 16
    assert default.best.metrics["ttft_s"] <= 10.0  # type: ignore[operator]
    # No target at all (inf): the most tokens/s per GPU is 4,096 users waiting tens of seconds for a first token.
    none = rooflm.plan("llama-3.1-8b", "h100-sxm", ttft_slo=math.inf, **SEARCH)  # type: ignore[arg-type]
    assert none.slo[0] is None and not none.ttft_slo_default and none.best is not None
    assert none.best.config["concurrency"] == 4096 and none.best.metrics["ttft_s"] > 10.0  # type: ignore[operator]
    assert not any("default TTFT target" in n for n in none.notes)
    given = rooflm.plan("llama-3.1-8b", "h100-sxm", ttft_slo=30.0, **SEARCH)  # type: ignore[arg-type]
    assert given.slo[0] == 30.0 and not given.ttft_slo_default and given.best is not None
    assert given.best.config["concurrency"] == 4096


def test_the_table_names_the_mode_and_shows_both_per_user_rates() -> None:
    args = ["plan", "--gpus", "1", "--prompt-len", "256", "--gen-len", "32", "--quant", "fp8", "--kv-dtype", "fp8",
            "--max-running", "512", "--max-tokens-per-step", "2048", "--concurrency", "16,4096", "--workers", "1"]
    table = runner.invoke(app, args, env={"COLUMNS": "250"})
    assert table.exit_code == 0, table.output
    out = " ".join(table.stdout.split())  # a narrow console folds the title
    assert "calibrated mode" in out and "e2e tok/s/user" in out and "tok/s/user" in out
    assert "best (TTFT ≤ 10 s (default))" in out and "default TTFT target of 10 s" in out
    doc = json.loads(runner.invoke(app, [*args, "--efficiency", "ideal", "--json"]).stdout)
    assert doc["efficiency"] == "ideal" and "--efficiency ideal" in doc["best"]["command"]
    ideal = runner.invoke(app, [*args, "--efficiency", "ideal"], env={"COLUMNS": "250"}).stdout
    assert "ideal mode" in " ".join(ideal.split())


def test_a_calibrated_plans_command_reproduces_it_in_serving_s_default_mode(default: rooflm.PlanResult) -> None:
    # The command leaves out serving's own default mode; run as printed, it prices the same point.
    assert default.best is not None and "--efficiency" not in default.best.command
    served = rooflm.serve_traffic("llama-3.1-8b", "h100-sxm", prompt_len=256, gen_len=32, concurrency=[16],
                                  method="steady", quant="fp8", kv_dtype="fp8", max_running=512,
                                  max_tokens_per_step=2048)
    assert served.efficiency == "calibrated"
    assert served.points[0].tpot_s == pytest.approx(default.best.metrics["tpot_s"], rel=5e-3)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan])
def test_a_ttft_target_must_be_positive(bad: float) -> None:
    with pytest.raises(rooflm.InvalidInputError, match="positive number of seconds") as e:
        rooflm.plan("llama-3.1-8b", "h100-sxm", ttft_slo=bad, **SEARCH)  # type: ignore[arg-type]
    assert e.value.field == "ttft_slo"


def test_the_best_is_checked_by_simulation() -> None:
    """The best few by the steady-state model are simulated request by request: the best point carries its simulated
    means, equal to the simulation `rooflm serving` runs of the same configuration, and "best" is one whose simulated
    means meet the targets (or a note says none did)."""
    r = rooflm.plan("llama-3.1-8b", "h100-sxm", gpus=1, quant="bf16", kv_dtype="bf16", max_running=[64, 256],
                    max_tokens_per_step=[8192], concurrency=[16, 64, 256], disaggregate="off", tpot_slo=0.03,
                    verify=2)
    best = r.best
    assert best is not None and best.simulated is not None
    c = best.config
    again = rooflm.serve_traffic("llama-3.1-8b", "h100-sxm", concurrency=[c["concurrency"]], quant="bf16",
                                 kv_dtype="bf16", max_running=c["max_running"], max_tokens_per_step=8192).points[0]
    assert best.simulated["ttft_s"] == again.ttft_s and best.simulated["tpot_s"] == again.tpot_s
    met = best.simulated["tpot_s"] <= 0.03 and best.simulated["ttft_s"] <= r.slo[0]
    assert best.simulated["meets_targets"] == met
    assert met or any("simulated" in n for n in r.notes)
    assert best.to_json_dict()["simulated"] == best.simulated
    # verify=0 simulates nothing.
    r0 = rooflm.plan("llama-3.1-8b", "h100-sxm", gpus=1, quant="bf16", kv_dtype="bf16", max_running=[64],
                     max_tokens_per_step=[8192], concurrency=[16], disaggregate="off", verify=0)
    assert r0.best is not None and r0.best.simulated is None
