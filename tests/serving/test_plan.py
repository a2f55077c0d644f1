"""`rooflm plan`: the frontier is the non-dominated set of what was searched, the best is the best within the
targets, each point's command reproduces it through `rooflm serving`, and the search space is the one stated."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import rooflm
from rooflm.cli import app
from rooflm.errors import InvalidInputError, RooflmError
from rooflm.serving import pareto
from rooflm.serving import plan_space as space
from rooflm.serving.plan_result import PlanResult
from rooflm.specs.hf_config import load_model

runner = CliRunner()
# A quick search: 2 GPUs (tp1·dp2, tp2, pp2) × 2 schemes × 2 KV dtypes = 12 step tables, × 3 engine limits (16/32,
# 16/2048, 64/2048; 64/32 is not searched: a token budget below max_running) × 4 loads = 144 configurations.
QUICK = {"gpus": 2, "prompt_len": 512, "gen_len": 64, "quant": "bf16,fp8", "kv_dtype": "bf16,fp8",
         "max_running": [16, 64], "max_tokens_per_step": [32, 2048], "concurrency": [1, 4, 16, 64], "workers": 1}


@pytest.fixture(scope="module")
def quick() -> PlanResult:
    # Targets that bind: 8B weights in fp8 over 3.35 TB/s take ~2.4 ms per step on one H100 (tp2: ~1.2 ms), so
    # small batches meet a 3.5 ms TPOT and the largest do not; a 32-token budget takes 16 steps per 512-token prompt,
    # past 100 ms of TTFT at the larger loads.
    return rooflm.plan("llama-3.1-8b", "h100-sxm", ttft_slo=0.1, tpot_slo=0.0035, **QUICK)  # type: ignore[arg-type]


def _dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] >= b[0] and a[1] >= b[1] and a != b


def _brute_force_check(xs: np.ndarray, ys: np.ndarray, front: list[tuple[float, float]]) -> None:
    points = list(zip(xs.tolist(), ys.tolist(), strict=True))
    for f in front:  # non-dominated
        assert not any(_dominates(p, f) for p in points), f
    for p in points:  # every point is on the frontier or dominated by one of its points
        assert p in front or any(_dominates(f, p) for f in front), p


def test_frontier_of_a_hand_example() -> None:
    # (1, 5) (2, 4) (3, 1) are non-dominated; (1, 3) is beaten by (1, 5), (2, 2) by (2, 4), the repeat of (2, 4)
    # is stood for by the first, NaN is never on it.
    x = np.array([1, 2, 3, 1, 2, 2, np.nan])
    y = np.array([5, 4, 1, 3, 2, 4, 9])
    assert pareto.frontier(x, y).tolist() == [0, 1, 2]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 8), st.integers(0, 8)), min_size=1, max_size=40))
def test_frontier_against_brute_force(pts: list[tuple[int, int]]) -> None:
    x, y = np.array([p[0] for p in pts], float), np.array([p[1] for p in pts], float)
    idx = pareto.frontier(x, y)
    front = [(float(x[i]), float(y[i])) for i in idx]
    assert len(set(front)) == len(front)
    _brute_force_check(x, y, front)


def test_the_plans_frontier_is_the_non_dominated_set_of_what_was_searched(quick: PlanResult) -> None:
    f = quick.fitting
    front = [(p.metrics["output_tokens_per_s_per_user"], p.metrics["output_tokens_per_s_per_gpu"]) for p in quick.pareto]
    assert len(front) >= 3
    _brute_force_check(f["output_tokens_per_s_per_user"], f["output_tokens_per_s_per_gpu"], front)  # type: ignore[arg-type]
    assert quick.searched == 144 and quick.fits == len(f["ttft_s"]) == 144  # 8B fits in every layout and scheme


def test_the_best_meets_the_targets_and_nothing_within_them_beats_it(quick: PlanResult) -> None:
    assert quick.best is not None
    m = quick.best.metrics
    assert m["ttft_s"] <= 0.1 and m["tpot_s"] <= 0.0035  # type: ignore[operator]
    f = quick.fitting
    within = (f["ttft_s"] <= 0.1) & (f["tpot_s"] <= 0.0035)
    assert (f["ttft_s"] > 0.1).any() and (f["tpot_s"] > 0.0035).any()
    assert 0 < within.sum() < len(within)  # the targets bind: some configurations miss them
    assert m["output_tokens_per_s_per_gpu"] == f["output_tokens_per_s_per_gpu"][within].max()
    # Without the targets the best is the highest throughput of all, which misses them.
    assert f["output_tokens_per_s_per_gpu"].max() > m["output_tokens_per_s_per_gpu"]  # type: ignore[operator]


def _serving(command: str) -> dict[str, object]:
    args = shlex.split(command)
    assert args[:2] == ["rooflm", "serving"]
    result = runner.invoke(app, [*args[1:], "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_the_command_line_reproduces_the_point(quick: PlanResult) -> None:
    """`rooflm serving --method steady` prices its own grids, whose points differ from the plan's shared table only
    at its own limits (the largest batch and token budget): they agree within 0.5%."""
    assert quick.best is not None
    chosen = [quick.best, quick.pareto[0], quick.pareto[-1]]
    for p in chosen:
        doc = _serving(p.command)
        point = doc["points"][0]  # type: ignore[index]
        assert doc["max_running"] == p.config["max_running"] and point["concurrency"] == p.config["concurrency"]
        assert doc["kv_capacity_tokens"] == p.kv_capacity_tokens  # sized as serve_traffic sizes it
        assert point["output_tokens_per_s_per_gpu"] == pytest.approx(p.metrics["output_tokens_per_s_per_gpu"], rel=5e-3)
        assert point["tpot_s"] == pytest.approx(p.metrics["tpot_s"], rel=5e-3)


def test_layouts_the_model_does_not_divide_into_are_not_searched() -> None:
    # Qwen2.5-7B has 28 query heads: tp = 8 does not divide them. 8 GPUs: tp·pp·dp = 8 with tp ∈ {1, 2, 4} and pp
    # dividing 8/tp: 4 + 3 + 2 = 9 layouts; tp = 8 (pp = dp = 1) is the tenth, left out.
    found = space.layouts(load_model("qwen2.5-7b"), 8)
    assert len(found) == 9 and all(p.tp != 8 for p in found)
    assert len(space.layouts(load_model("llama-3.1-8b"), 8)) == 10  # 32 heads: all ten
    # Expert parallelism only for MoE models, over every device of a stage (ep = tp × dp).
    assert all(p.ep == 1 for p in space.layouts(load_model("llama-3.1-8b"), 8))
    moe = space.layouts(load_model("qwen3-30b-a3b"), 2)  # tp1·dp2, tp2, pp2; the first two also with ep = 2
    assert sorted((p.tp, p.ep, p.pp, p.dp) for p in moe) == [(1, 1, 1, 2), (1, 1, 2, 1), (1, 2, 1, 2), (2, 1, 1, 1),
                                                             (2, 2, 1, 1)]
    r = rooflm.plan("qwen2.5-7b", "h100-sxm", gpus=8, prompt_len=256, gen_len=32, quant="fp8", kv_dtype="fp8",
                    max_running=[64], max_tokens_per_step=[2048], concurrency=[1, 64], workers=1)
    assert r.searched == 9 * 2 and all(p.config["tp"] != 8 for p in r.pareto)


def test_a_target_nobody_meets_gives_no_best_and_says_so() -> None:
    args = {**QUICK, "quant": "fp8", "kv_dtype": "fp8", "max_running": [16], "max_tokens_per_step": [512]}
    r = rooflm.plan("llama-3.1-8b", "h100-sxm", tpot_slo=1e-6, **args)  # type: ignore[arg-type]
    assert r.best is None and r.pareto
    assert any("no searched configuration meets the targets (TPOT ≤ 0.001 ms)" in n for n in r.notes)
    assert r.to_json_dict()["best"] is None
    cli = runner.invoke(app, ["plan", "--gpus", "1", "--prompt-len", "512", "--gen-len", "64", "--quant", "fp8",
                              "--kv-dtype", "fp8", "--max-running", "16", "--max-tokens-per-step", "512",
                              "--concurrency", "1,8", "--tpot-slo", "1e-6"])
    assert cli.exit_code == 0, cli.output
    assert "best (TPOT ≤ 0.001 ms): none of the 2 fitting configurations meets it" in cli.stdout


def test_nothing_fits_says_so() -> None:
    # Llama-3.1-70B in bf16 is 141 GB of weights: more than one H100's 80 GB.
    r = rooflm.plan("llama-3.1-70b", "h100-sxm", gpus=1, prompt_len=512, gen_len=64, quant="bf16", kv_dtype="bf16",
                    max_running=[16], max_tokens_per_step=[512], concurrency=[1, 8], workers=1)
    assert r.searched == 2 and r.fits == 0 and r.best is None and not r.pareto
    assert any("no configuration fits" in n for n in r.notes)


def test_cli_end_to_end_table_and_json() -> None:
    args = ["plan", "--gpus", "2", "--prompt-len", "512", "--gen-len", "64", "--quant", "fp8", "--kv-dtype", "fp8",
            "--max-running", "16,64", "--max-tokens-per-step", "2048", "--concurrency", "1,16,64",
            "--ttft-slo", "0.2", "--tpot-slo", "0.004", "--workers", "1"]
    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    assert "Pareto frontier of 18 configurations (18 fit)" in table.stdout  # 3 layouts × 2 limits × 3 loads
    assert "rooflm serving --model llama-3.1-8b" in table.stdout
    doc = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert doc["searched"] == 18 and doc["best"]["command"].startswith("rooflm serving")
    assert set(doc["best"]["config"]) == {"tp", "ep", "pp", "dp", "quant", "kv_dtype", "spec_tokens", "max_running",
                                          "max_tokens_per_step", "concurrency"}
    assert [p["output_tokens_per_s_per_user"] for p in doc["pareto"]] == sorted(
        p["output_tokens_per_s_per_user"] for p in doc["pareto"])


def test_default_schemes_are_those_the_device_runs() -> None:
    # An A100 has no fp8 or fp4 roof: the default schemes leave them out, and say so; asked for, fp8 is refused.
    r = rooflm.plan("llama-3.1-8b", "a100-sxm", gpus=1, prompt_len=256, gen_len=32, kv_dtype="bf16",
                    max_running=[16], max_tokens_per_step=[2048], concurrency=[1], workers=1)
    assert r.searched == 3  # bf16, w4a16, w4a8
    assert {p.config["quant"] for p in r.pareto} <= {"bf16", "w4a16", "w4a8"}
    assert any("fp8 compute roof" in n for n in r.notes)
    with pytest.raises(InvalidInputError, match="no fp8 compute roof") as e:
        rooflm.plan("llama-3.1-8b", "a100-sxm", gpus=1, quant="bf16,fp8")
    assert e.value.field == "quant"


def test_speculative_decoding_is_searched_off_and_on() -> None:
    r = rooflm.plan("llama-3.1-8b", "h100-sxm", gpus=1, prompt_len=256, gen_len=32, quant="fp8", kv_dtype="fp8",
                    spec_tokens=[0, 2], acceptance=0.8, max_running=[16], max_tokens_per_step=[2048],
                    concurrency=[1, 16], workers=1)
    assert r.searched == 4
    spec = [p for p in r.pareto if p.config["spec_tokens"] == 2]
    assert spec and "--spec-tokens 2 --max-running 16 --max-tokens-per-step 2048 --acceptance 0.8" in spec[0].command
    # At one user drafting 2 tokens at acceptance 0.8 emits more tokens per step: the fastest per user drafts.
    assert r.pareto[-1].config["spec_tokens"] == 2


def test_a_process_pool_gives_the_same_plan() -> None:
    args = {**QUICK, "quant": "fp8", "kv_dtype": "fp8"}
    serial = rooflm.plan("llama-3.1-8b", "h100-sxm", **args).to_json_dict()  # type: ignore[arg-type]
    pooled = rooflm.plan("llama-3.1-8b", "h100-sxm", **{**args, "workers": 2}).to_json_dict()  # type: ignore[arg-type]
    assert pooled == serial


@pytest.mark.parametrize(("kwargs", "field", "words"), [
    ({"gpus": 0}, "gpus", "--gpus must be an integer between 1"),
    ({"ttft_slo": -1.0}, "ttft_slo", "--ttft-slo must be a positive number"),
    ({"tpot_slo": float("nan")}, "tpot_slo", "--tpot-slo must be a positive number"),
    ({"tp": 2}, "tp", "tp is searched by the plan"),
    ({"max_num_batched_tokens": 2048}, "max_tokens_per_step", "max-tokens-per-step is searched"),
    ({"max_running": [512], "max_tokens_per_step": [256]}, "max_tokens_per_step", "is below every --max-running"),
    ({"concurrency": [0]}, "concurrency", "--concurrency must be integers between 1"),
    ({"quant": "bf16,nope"}, "quant", "nope"),
    ({"kv_dtype": ""}, "kv_dtype", "--kv-dtype lists no value"),
    ({"acceptance": 0.8}, "spec_tokens", "need speculative decoding"),
    ({"gen_len": 1}, "gen_len", "2 or more output tokens"),
    ({"workers": 0}, "workers", "workers must be"),
])
def test_bad_inputs_name_the_field(kwargs: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(RooflmError, match=words) as e:
        rooflm.plan("llama-3.1-8b", "h100-sxm", **{**QUICK, "quant": "fp8", "kv_dtype": "fp8", **kwargs})  # type: ignore[arg-type]
    assert e.value.field == field


def test_a_search_past_the_limit_is_refused_before_work_with_count_and_limit() -> None:
    # 10 layouts × 1 scheme × 1 KV dtype × 1 limit × 100,001 loads = 1,000,010 configurations > 1,000,000.
    with pytest.raises(InvalidInputError, match=r"1,000,010 configurations .*at most 1,000,000 per plan") as e:
        rooflm.plan("llama-3.1-8b", "h100-sxm", gpus=8, quant="fp8", kv_dtype="fp8", max_running=[64],
                    max_tokens_per_step=[2048], concurrency=list(range(1, 100_002)))
    assert e.value.field == "concurrency"
    cli = runner.invoke(app, ["plan", "--tp", "2"])
    assert cli.exit_code == 2 and "--tp" in cli.output  # not an option of plan: the layout is searched
