"""`rooflm plan`: the frontier is the non-dominated set of what was searched, the best is the best within the
targets, each point's command reproduces it through `rooflm serving`, and the search space is the one stated."""

from __future__ import annotations

import json
import math
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
from rooflm.specs.hardware import load_hardware
from rooflm.specs.hf_config import load_model

runner = CliRunner()
# A quick search: 2 GPUs (tp1·dp2, tp2, pp2, and tp1·dp2's two 1-GPU replicas disaggregated 1P:1D, read off its step
# table) × 2 schemes × 2 KV dtypes = 12 step tables and 16 deployments, × 3 engine limits (16/32, 16/2048, 64/2048;
# 64/32 is not searched: a token budget below max_running) × 4 loads = 192 configurations.
# Ideal mode: the targets below are derived from the roofline's step times.
QUICK = {"gpus": 2, "prompt_len": 512, "gen_len": 64, "quant": "bf16,fp8", "kv_dtype": "bf16,fp8",
         "max_running": [16, 64], "max_tokens_per_step": [32, 2048], "concurrency": [1, 4, 16, 64], "workers": 1,
         "efficiency": "ideal"}


# Built once per run: conftest.WORKER_UNITS sends this module's tests to one xdist worker.
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


def test_figures_equal_to_a_billionth_are_one_point_on_the_frontier() -> None:
    """Points 0 and 1 differ in the 12th digit, each ahead on one axis (as two configurations whose extra limit does
    not bind come out of the fixed point): one point, the first; point 2, 1e-6 apart, is a point of its own. The
    order of the last digits does not decide it: swapped, the same point stands."""
    x = np.array([100.0, 100.0 * (1 + 1e-12), 50.0, 100.0 * (1 + 1e-6)])
    y = np.array([10.0 * (1 + 1e-12), 10.0, 20.0, 9.0])
    assert pareto.frontier(x, y).tolist() == [2, 0, 3]
    assert pareto.frontier(x, y[[1, 0, 2, 3]]).tolist() == [2, 0, 3]
    # best: the most y among the allowed; 0 and 1 tie on it (to 1e-9), so more x, then the lower index: 0
    assert pareto.best(x, y, np.array([True, True, False, True])) == 0
    # a run within 1e-9 of its smallest value takes that value; beyond it a new run starts; NaN stays
    assert pareto.snapped(np.array([1.0, 1.0 + 5e-10, 1.0 + 2e-9, np.nan])).tolist()[:3] == [1.0, 1.0, 1.0 + 2e-9]


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
    assert quick.searched == 192 and quick.fits == len(f["ttft_s"]) == 192  # 8B fits in every layout and scheme
    # The frontier holds both kinds: 1P:1D's decode replica never runs a prefill chunk, so it wins at high loads.
    assert {p.config["disaggregate"] for p in quick.pareto} == {None, "1P:1D"}


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
    assert r.searched == (9 + 16) * 2 and all(p.config["tp"] != 8 for p in r.pareto)  # 16 splits: see the counts test


def test_a_target_nobody_meets_gives_no_best_and_says_so() -> None:
    args = {**QUICK, "quant": "fp8", "kv_dtype": "fp8", "max_running": [16], "max_tokens_per_step": [512]}
    r = rooflm.plan("llama-3.1-8b", "h100-sxm", tpot_slo=1e-6, ttft_slo=math.inf, **args)  # type: ignore[arg-type]
    assert r.best is None and r.pareto
    assert any("no searched configuration meets the targets (TPOT ≤ 0.001 ms)" in n for n in r.notes)
    assert r.to_json_dict()["best"] is None
    cli = runner.invoke(app, ["plan", "--gpus", "1", "--prompt-len", "512", "--gen-len", "64", "--quant", "fp8",
                              "--kv-dtype", "fp8", "--max-running", "16", "--max-tokens-per-step", "512",
                              "--concurrency", "1,8", "--tpot-slo", "1e-6"])
    assert cli.exit_code == 0, cli.output
    # No --ttft-slo: the default TTFT target stands beside the TPOT one.
    assert "best (TTFT ≤ 10 s (default) and TPOT ≤ 1 µs): none of the 2 fitting configurations meets it" in cli.stdout


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
    # 3 layouts and the split 1P:1D of two 1-GPU replicas, × 2 limits × 3 loads
    assert "Pareto frontier of 24 configurations (24 fit)" in table.stdout
    assert "rooflm serving --model llama-3.1-8b" in table.stdout
    doc = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert doc["searched"] == 24 and doc["best"]["command"].startswith("rooflm serving")
    assert set(doc["best"]["config"]) == {"tp", "ep", "pp", "dp", "quant", "kv_dtype", "spec_tokens", "disaggregate",
                                          "max_running", "max_num_batched_tokens", "concurrency"}
    off = json.loads(runner.invoke(app, [*args, "--disaggregate", "off", "--json"]).stdout)
    assert off["searched"] == 18 and all(p["config"]["disaggregate"] is None for p in off["pareto"])
    assert [p["output_tokens_per_s_per_user"] for p in doc["pareto"]] == sorted(
        p["output_tokens_per_s_per_user"] for p in doc["pareto"])


def test_the_table_says_which_frontier_points_meet_the_targets() -> None:
    from rooflm.cli.plan import targets_cell
    from rooflm.serving.plan_result import PlanPoint

    def point(ttft: float | None, tpot: float | None) -> PlanPoint:
        return PlanPoint({}, {"ttft_s": ttft, "tpot_s": tpot}, "memory", 0, "")

    # TTFT 300 ms against a 200 ms target misses; TPOT 2 ms against 4 ms meets; a figure the model could not give
    # (an overloaded point: None) meets no target.
    assert targets_cell(point(0.3, 0.002), (0.2, 0.004)) == "misses TTFT"
    assert targets_cell(point(0.1, 0.002), (0.2, 0.001)) == "misses TPOT"
    assert targets_cell(point(0.3, 0.005), (0.2, 0.004)) == "misses TTFT, TPOT"
    assert targets_cell(point(0.2, 0.004), (0.2, 0.004)) == "met"  # at the target is within it
    assert targets_cell(point(None, 0.002), (0.2, None)) == "misses TTFT"
    args = ["plan", "--gpus", "1", "--prompt-len", "512", "--gen-len", "64", "--quant", "fp8", "--kv-dtype", "fp8",
            "--max-running", "16", "--max-tokens-per-step", "2048", "--concurrency", "1,64", "--workers", "1"]
    with_targets = runner.invoke(app, [*args, "--ttft-slo", "0.2"], env={"COLUMNS": "200"})
    assert with_targets.exit_code == 0 and "targets" in with_targets.stdout, with_targets.output
    by_default = runner.invoke(app, args, env={"COLUMNS": "200"})  # the default TTFT target is a target too
    assert by_default.exit_code == 0 and "targets" in by_default.stdout, by_default.output
    without = runner.invoke(app, [*args, "--ttft-slo", "inf"], env={"COLUMNS": "200"})
    assert without.exit_code == 0 and "targets" not in without.stdout and "misses" not in without.stdout


def test_default_schemes_are_those_the_device_runs() -> None:
    # An A100 has no fp8 or fp4 roof: the default schemes leave them out, and say so; asked for, fp8 is refused.
    r = rooflm.plan("llama-3.1-8b", "a100-sxm", gpus=1, prompt_len=256, gen_len=32, kv_dtype="bf16",
                    max_running=[16], max_tokens_per_step=[2048], concurrency=[1], workers=1)
    assert r.searched == 3  # bf16, w4a16, w4a8; one GPU: no split
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
    assert spec and "--spec-tokens 2 --max-running 16 --max-num-batched-tokens 2048 --acceptance 0.8" in spec[0].command
    # At one user drafting 2 tokens at acceptance 0.8 emits more tokens per step: the fastest per user drafts.
    assert r.pareto[-1].config["spec_tokens"] == 2


def test_a_process_pool_gives_the_same_plan() -> None:
    args = {**QUICK, "quant": "fp8", "kv_dtype": "fp8"}
    serial = rooflm.plan("llama-3.1-8b", "h100-sxm", **args).to_json_dict()  # type: ignore[arg-type]
    pooled = rooflm.plan("llama-3.1-8b", "h100-sxm", **{**args, "workers": 2}).to_json_dict()  # type: ignore[arg-type]
    assert pooled == serial


@pytest.mark.parametrize(("kwargs", "field", "words"), [
    ({"gpus": 0}, "gpus", "^gpus must be an integer between 1"),
    ({"ttft_slo": -1.0}, "ttft_slo", "^ttft_slo must be a positive number"),
    ({"tpot_slo": float("nan")}, "tpot_slo", "^tpot_slo must be a positive number"),
    ({"tp": 2}, "tp", "tp is searched by the plan"),
    ({"max_num_batched_tokens": 2048}, "max_num_batched_tokens", "^max_num_batched_tokens is searched"),
    ({"max_running": [512], "max_tokens_per_step": [256]}, "max_num_batched_tokens", "is below every max_running"),
    ({"concurrency": [0]}, "concurrency", "^concurrency must be integers between 1"),
    ({"quant": "bf16,nope"}, "quant", "nope"),
    ({"kv_dtype": ""}, "kv_dtype", "^kv_dtype lists no value"),
    ({"acceptance": 0.8}, "spec_tokens", "need speculative decoding"),
    ({"gen_len": 1}, "gen_len", "2 or more output tokens"),
    ({"workers": 0}, "workers", "workers must be"),
])
def test_bad_inputs_name_the_field(kwargs: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(RooflmError, match=words) as e:
        rooflm.plan("llama-3.1-8b", "h100-sxm", **{**QUICK, "quant": "fp8", "kv_dtype": "fp8", **kwargs})  # type: ignore[arg-type]
    # The API's keywords, not the CLI's flags (an unknown name's pointer to `rooflm ... --help` aside).
    assert e.value.field == field and "--" not in str(e.value).split("(see `")[0]


def test_a_search_past_the_limit_is_refused_before_work_with_count_and_limit() -> None:
    # 10 layouts × 1 scheme × 1 KV dtype × 1 limit × 100,001 loads = 1,000,010 configurations > 1,000,000.
    with pytest.raises(InvalidInputError, match=r"1,000,010 configurations .*at most 1,000,000 per plan") as e:
        rooflm.plan("llama-3.1-8b", "h100-sxm", gpus=8, quant="fp8", kv_dtype="fp8", max_running=[64],
                    max_tokens_per_step=[2048], concurrency=list(range(1, 100_002)), disaggregate="off")
    assert e.value.field == "concurrency"
    # With the splits (16, see test_the_splits_searched_and_their_count): 26 × 38,462 loads = 1,000,012.
    with pytest.raises(InvalidInputError, match=r"1,000,012 configurations \(26 aggregated or disaggregated "
                                                r"deployments on 10 step tables") as e:
        rooflm.plan("llama-3.1-8b", "h100-sxm", gpus=8, quant="fp8", kv_dtype="fp8", max_running=[64],
                    max_tokens_per_step=[2048], concurrency=list(range(1, 38_463)))
    assert e.value.field == "concurrency"
    cli = runner.invoke(app, ["plan", "--tp", "2"])
    assert cli.exit_code == 2 and "--tp" in cli.output  # not an option of plan: the layout is searched


def test_a_disaggregated_point_reproduces_through_serving(quick: PlanResult) -> None:
    """A split's command runs `rooflm serving --method steady --disaggregate xP:yD`, which prices its own grids: the
    same tokens/s per GPU and TPOT within the 0.5% the aggregated reproduction allows."""
    split = [p for p in quick.pareto if p.config["disaggregate"] is not None]
    assert split
    for p in split:
        assert f"--disaggregate {p.config['disaggregate']}" in p.command and "--dp" not in p.command
        doc = _serving(p.command)
        point = doc["points"][0]  # type: ignore[index]
        assert doc["disaggregate"]["split"] == p.config["disaggregate"] and doc["devices"] == 2  # type: ignore[index]
        assert doc["kv_capacity_tokens"] == p.kv_capacity_tokens
        assert point["output_tokens_per_s_per_gpu"] == pytest.approx(p.metrics["output_tokens_per_s_per_gpu"], rel=5e-3)
        assert point["tpot_s"] == pytest.approx(p.metrics["tpot_s"], rel=5e-3)
        assert point["ttft_s"] == pytest.approx(p.metrics["ttft_s"], rel=5e-3)


def test_one_replica_searches_no_splits() -> None:
    # One GPU is one replica: nothing to split, and the search is the aggregated one exactly.
    args = {**QUICK, "gpus": 1, "quant": "fp8", "kv_dtype": "fp8"}
    auto = rooflm.plan("llama-3.1-8b", "h100-sxm", **args)  # type: ignore[arg-type]
    off = rooflm.plan("llama-3.1-8b", "h100-sxm", disaggregate="off", **args)  # type: ignore[arg-type]
    assert auto.searched == off.searched == 12 and auto.to_json_dict() == off.to_json_dict()  # 3 limits × 4 loads
    assert all(p.config["disaggregate"] is None for p in auto.pareto)
    assert space.splits_of(1, "auto") == ()
    # Llama-3.1-8B on 3 GPUs: 3 divides neither its 32 query heads nor its 32 layers, so the only replica is one
    # GPU (tp1, three of them): the splits 1P:2D and 2P:1D.
    found = space.disaggregated_layouts(load_model("llama-3.1-8b"), 3, "auto")
    assert [(p.tp, p.pp, [s.label for s in splits]) for p, splits in found] == [(1, 1, ["1P:2D", "2P:1D"])]


def test_the_splits_searched_and_their_count() -> None:
    # Up to 8 replicas every split; past it the prefill share on a geometric grid from each end.
    assert [s.label for s in space.splits_of(2, "auto")] == ["1P:1D"]
    assert len(space.splits_of(8, "auto")) == 7
    # 16: x ∈ {1, 2, 4, 8} ∪ {15, 14, 12, 8} = 7 splits; 64: {1, 2, 4, 8, 16, 32} ∪ {63, 62, 60, 56, 48, 32} = 11.
    assert [s.prefill for s in space.splits_of(16, "auto")] == [1, 2, 4, 8, 12, 14, 15]
    assert len(space.splits_of(64, "auto")) == 11
    # `serving --disaggregate` takes at most 256 replicas of a kind: 512 replicas keep 256P:256D and those near it.
    assert [s.label for s in space.splits_of(512, "auto")] == ["256P:256D"]
    assert space.splits_of(8, "off") == ()
    # 8 GPUs of Llama-3.1-8B: replicas of 1 GPU (tp1: 8 replicas, 7 splits), 2 (tp2, pp2: 4 replicas, 3 splits
    # each) and 4 (tp4, tp2·pp2, pp4: 2 replicas, 1 split each) = 16 splits of 6 layouts, each read off the step
    # table of its aggregated layout (dp = the replicas): no step table more.
    found = space.disaggregated_layouts(load_model("llama-3.1-8b"), 8, "auto")
    assert len(found) == 6 and sum(len(s) for _, s in found) == 16
    assert all(p.tp * p.pp * p.dp == 8 for p, _ in found)
    tables, _ = space.tables(load_model("llama-3.1-8b"), load_hardware("h100-sxm"), 8, (["fp8"], True),
                             (["fp8"], True), [0], {}, found)
    assert len(tables) == 10 and sum(len(t.blocks) for t in tables) == 26
    # A list keeps the layouts whose replicas it splits: 1P:3D is 4 replicas of 2 GPUs (tp2 or pp2).
    listed = space.disaggregated_layouts(load_model("llama-3.1-8b"), 8, space.parse_disaggregate("1P:3D"))
    assert sorted((p.tp, p.pp) for p, _ in listed) == [(1, 2), (2, 1)]
    r = rooflm.plan("llama-3.1-8b", "h100-sxm", **{**QUICK, "gpus": 4, "quant": "fp8", "kv_dtype": "fp8",  # type: ignore[arg-type]
                                                    "disaggregate": "1P:1D,1P:3D", "kv_link": "intra_node"})
    # 4 GPUs: tp1·dp4, tp2·dp2, tp4, pp2·dp2, tp2·pp2, pp4 = 6 layouts (pp4 × tp1 included; 32 layers), plus 1P:3D of
    # tp1 and 1P:1D of tp2 and of pp2: 9 blocks × 3 limits × 4 loads = 108.
    assert r.searched == 108
    assert any(p.config["disaggregate"] for p in r.pareto) and all("--kv-link intra_node" in p.command
                                                                  for p in r.pareto if p.config["disaggregate"])


@pytest.mark.parametrize(("kwargs", "field", "words"), [
    ({"disaggregate": "3P:2D", "gpus": 8}, "disaggregate", "5 replicas"),
    ({"disaggregate": "1P:1D,nope"}, "disaggregate", "xP:yD"),
    ({"disaggregate": []}, "disaggregate", "auto, off or a list"),
    ({"disaggregate": "off", "kv_link": "intra_node"}, "kv_link", "; disaggregate off"),
    ({"kv_link": "intra_node", "gpus": 16}, "kv_link", "do not fit in one"),
    ({"kv_link": "fiber"}, "kv_link", "^kv_link must be one of"),
])
def test_bad_disaggregation_names_the_field(kwargs: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(RooflmError, match=words) as e:
        rooflm.plan("llama-3.1-8b", "h100-sxm", **{**QUICK, "quant": "fp8", "kv_dtype": "fp8", **kwargs})  # type: ignore[arg-type]
    # The API's keywords, not the CLI's flags (an unknown name's pointer to `rooflm ... --help` aside).
    assert e.value.field == field and "--" not in str(e.value).split("(see `")[0]


def test_long_prompts_and_a_tight_tpot_pick_disaggregated_serving() -> None:
    """4 H100s, fp8, 8,000-token prompts and 512-token outputs at the 8,192-token budget (a prompt is one chunk),
    TPOT ≤ 4.5 ms and TTFT ≤ 1 s. Why the best is disaggregated, from the two TPOTs (analyze's figures):

    - 1P:1D of tp2 replicas at 48 users: the decode replica runs decode-only steps, so TPOT is one pure decode step
      D_tp2(b, c̄) at its ~37 rows and mean context 8,000 + 256: 3.23 ms at b = 24 plus 84 µs per further row
      (each row's 8,256 fp8 KV tokens, 64 KiB each, halved over tp2, at 3.35 TB/s) ≈ 4.3 ms: within the target.
    - Aggregated tp2·dp2 at the same 48 users: each engine (24 users, X_e ≈ 8.2 requests/s) runs every other user's
      prompt as one step of P = 57.0 ms (analyze prefill, tp2) among its decode steps, and a decoding request sits
      through X_e·(N − 1)/N ≈ 7.8 of those per second: of each second only 1 − 7.8 × (P − D(1)) ≈ 1 − 7.8 × 55.7 ms
      = 0.56 is left for its ~1/TPOT decode steps, so TPOT ≈ D(b ≈ 23.5) / 0.56 = 3.18 ms / 0.56 ≈ 5.6 ms: past the
      target. Aggregated engines meet it only at fewer users (32), for fewer tokens/s per GPU."""
    kw = {"gpus": 4, "prompt_len": 8000, "gen_len": 512, "quant": "fp8", "kv_dtype": "fp8", "max_running": [64],
          "max_tokens_per_step": [8192], "concurrency": [16, 32, 48, 64], "ttft_slo": 1.0, "tpot_slo": 0.0045,
          "workers": 1, "efficiency": "ideal", "verify": 0}  # the hand figures above are the steady model's, on the roofline
    r = rooflm.plan("llama-3.1-8b", "h100-sxm", **kw)  # type: ignore[arg-type]
    best = r.best
    assert best is not None and best.config["disaggregate"] == "1P:1D" and best.config["tp"] == 2
    users, b = int(best.config["concurrency"]), best.metrics["decode_batch"]  # type: ignore[call-overload]
    assert users == 48 and b is not None
    fp8 = {"quant": "fp8", "kv_dtype": "fp8"}
    pure = [rooflm.analyze("llama-3.1-8b", "h100-sxm", phase="decode", batch=n, context=8256, tp=2, **fp8).totals.time_s
            for n in (math.floor(b), math.ceil(b))]
    assert pure[0] <= best.metrics["tpot_s"] <= pure[1] * 1.01 and best.metrics["tpot_s"] <= 0.0045  # type: ignore[operator]
    # The aggregated engines at the same users, and the hand figure of their TPOT.
    agg = rooflm.serve_traffic("llama-3.1-8b", "h100-sxm", prompt_len=8000, gen_len=512, concurrency=[users],
                               method="steady", tp=2, dp=2, max_running=64, max_tokens_per_step=8192,
                               efficiency="ideal", **fp8).points[0]
    assert agg.tpot_s is not None and agg.requests_per_s is not None and agg.decode_batch is not None
    x_e, n = agg.requests_per_s / 2, users / 2
    prefill = rooflm.analyze("llama-3.1-8b", "h100-sxm", phase="prefill", batch=1, prompt_len=8000, tp=2, **fp8)
    one = rooflm.analyze("llama-3.1-8b", "h100-sxm", phase="decode", batch=1, context=8256, tp=2, **fp8).totals.time_s
    rows = rooflm.analyze("llama-3.1-8b", "h100-sxm", phase="decode", batch=round(agg.decode_batch), context=8256,
                          tp=2, **fp8).totals.time_s
    by_hand = rows / (1 - x_e * (n - 1) / n * (prefill.totals.time_s - one))
    assert agg.tpot_s == pytest.approx(by_hand, rel=0.05) and agg.tpot_s > 0.0045
    off = rooflm.plan("llama-3.1-8b", "h100-sxm", disaggregate="off", **kw).best  # type: ignore[arg-type]
    assert off is not None and off.config["concurrency"] < users
    assert off.metrics["output_tokens_per_s_per_gpu"] < 0.95 * best.metrics["output_tokens_per_s_per_gpu"]  # type: ignore[operator]
    assert _serving(best.command)["points"][0]["tpot_s"] == pytest.approx(best.metrics["tpot_s"], rel=5e-3)  # type: ignore[index]


def test_a_replica_reads_the_step_table_of_its_aggregated_layout() -> None:
    """The plan reads R replicas of tp × pp devices (ep = 1) off the aggregated layout of dp = R: a step table is per
    replica, so its figures are a dp = 1 layout's (analyze gives each replica ⌈batch / dp⌉ of the batch). An MoE
    replica with its experts over its own tp devices (ep = tp) is no aggregated layout (there ep = tp × dp): it has
    a table of its own, and its splits still reproduce through `serving --disaggregate`."""
    from rooflm.serving import plan as plan_module
    from rooflm.serving.steps import build

    args = {"max_prompt": 1024, "max_context": 1280, "exact_prompts": (1024,), "max_running": 64,
            "max_tokens_per_step": 2048, "kv_blocks": None, "mean_context": 1280.0, "quant": "fp8", "kv_dtype": "fp8"}
    for model, layout in (("llama-3.1-8b", {"tp": 2, "pp": 1}), ("qwen3-30b-a3b", {"tp": 1, "pp": 2})):
        shared = build(load_model(model), "h100-sxm", dp=2, **layout, **args)  # type: ignore[arg-type]
        own = build(load_model(model), "h100-sxm", dp=1, **layout, **args)  # type: ignore[arg-type]
        assert shared.engine == own.engine and shared.devices == 2 * own.devices
        for name in ("decode", "decode_attention", "decode_linear", "prefill_linear", "prompt_attention"):
            assert np.array_equal(getattr(shared, name), getattr(own, name)), (model, name)
    # Qwen3-30B-A3B on 4 GPUs: 11 aggregated layouts (tp1: pp1·dp4, pp2·dp2 with ep 1 or tp·dp, pp4; tp2: dp2 with
    # ep 1 or 4, pp2 with ep 1 or 2; tp4 with ep 1 or 4), and the splits 1P:3D, 2P:2D, 3P:1D (tp1), 1P:1D (tp1·pp2,
    # tp2, and tp2 with ep 2: the one table of its own) = 12 step tables, 17 deployments.
    spec, hw = load_model("qwen3-30b-a3b"), load_hardware("h100-sxm")
    found, _ = space.tables(spec, hw, 4, (["fp8"], True), (["fp8"], True), [0], {},
                            space.disaggregated_layouts(spec, 4, "auto"))
    assert len(found) == 12 and sum(len(t.blocks) for t in found) == 17
    own_table = [t for t in found if not t.aggregated]
    assert [(t.tp, t.ep, [s.label for s in t.splits]) for t in own_table] == [(2, 2, ["1P:1D"])]
    traffic = plan_module._traffic(spec, 2000, 128, 0)
    search = plan_module.Search(spec, hw, traffic.build_args | {"max_running": 64, "max_tokens_per_step": 8192},
                                traffic.moments, np.array([64.0]), np.array([8192.0]), np.array([1.0, 16.0]),
                                traffic.need_tokens, plan_module.pick_link(hw, "inter_node", 4))
    replica = own_table[0].replica({"efficiency": "ideal"})
    columns = plan_module.evaluate(search, replica, own_table[0].splits, aggregated=False)
    served = rooflm.serve_traffic(spec, hw, prompt_len=2000, gen_len=128, concurrency=[1, 16], method="steady",
                                  disaggregate="1P:1D", max_running=64, max_tokens_per_step=8192, **replica)
    assert columns["output_tokens_per_s_per_gpu"][0, 0].tolist() == pytest.approx(
        [p.output_tokens_per_s_per_gpu for p in served.points], rel=5e-3)


def test_a_long_frontier_is_printed_spread_along_it() -> None:
    from rooflm.cli.plan import spread

    # Per-user rates 1, 2, 4, …, 512 (10 points): log-spaced targets for 4 rows fall at 1, 8, 64, 512 (log2 0, 3, 6,
    # 9), i.e. indices 0, 3, 6, 9; fewer points than rows, or rows = 0, print them all.
    rates = [2.0**i for i in range(10)]
    assert spread(rates, 4) == [0, 3, 6, 9]
    assert spread(rates, 0) == list(range(10)) and spread(rates[:3], 4) == [0, 1, 2]
    # A run of near-equal neighbours (100, 100.1, 100.2) yields one row, not three.
    assert spread([1.0, 100.0, 100.1, 100.2, 10_000.0], 3) == [0, 1, 4]
