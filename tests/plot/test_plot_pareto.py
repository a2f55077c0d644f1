"""`rooflm plot pareto`: the figure draws rooflm.plan's result unchanged (every fitting configuration, the frontier,
the best, the targets), in every format, from the CLI and the API."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("matplotlib")
pytest.importorskip("plotly")

import rooflm
import rooflm.plot
from rooflm.cli import app
from rooflm.errors import InvalidInputError
from rooflm.plot import Query, render
from rooflm.plot.pareto_data import from_result, label

runner = CliRunner()
# Ideal mode: the 3.5 ms TPOT target below binds on the roofline's step times.
PLAN = {"gpus": 2, "prompt_len": 512, "gen_len": 64, "quant": "fp8", "kv_dtype": "fp8", "max_running": [16, 64],
        "max_tokens_per_step": [2048], "concurrency": [1, 8, 64], "workers": 1, "efficiency": "ideal"}
QUERY = Query.of(model="llama-3.1-8b", hardware="h100-sxm", prompt_len=512, gen_len=64, quant="fp8", kv_dtype="fp8",
                 max_num_batched_tokens=2048, efficiency="ideal")
SEARCH = {"quants": ["fp8"], "gpus": 2, "max_running": [16, 64], "concurrency": [1, 8, 64], "ttft_slo": 0.1,
          "tpot_slo": 0.0035, "workers": 1}
CLI = ["--gpus", "2", "--prompt-len", "512", "--gen-len", "64", "--quant", "fp8", "--kv-dtype", "fp8",
       "--max-num-batched-tokens", "2048", "--concurrency", "1,8,64", "--tpot-slo", "0.0035", "--efficiency", "ideal"]


@pytest.fixture(scope="module")
def result() -> rooflm.PlanResult:
    return rooflm.plan("llama-3.1-8b", "h100-sxm", ttft_slo=0.1, tpot_slo=0.0035, **PLAN)  # type: ignore[arg-type]


def _svg_text(path: Path) -> str:
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    return " ".join(t for el in root.iter() for t in (el.text, el.tail) if t)


def test_the_figures_data_is_the_plans_result(result: rooflm.PlanResult) -> None:
    d = from_result(result)
    f = result.fitting
    assert d.per_user == f["output_tokens_per_s_per_user"].tolist()
    assert d.per_gpu == f["output_tokens_per_s_per_gpu"].tolist()
    assert d.frontier_per_user == [p.metrics["output_tokens_per_s_per_user"] for p in result.pareto]
    assert d.frontier_per_gpu == [p.metrics["output_tokens_per_s_per_gpu"] for p in result.pareto]
    assert result.best is not None and d.best == (result.best.metrics["output_tokens_per_s_per_user"],
                                                   result.best.metrics["output_tokens_per_s_per_gpu"], label(result.best))
    assert d.meets == [a <= 0.1 and b <= 0.0035 for a, b in zip(f["ttft_s"], f["tpot_s"], strict=True)]
    assert 0 < sum(d.meets) < len(d.meets)
    # 3 layouts and the split 1P:1D of two 1-GPU replicas, × 2 limits × 3 loads
    assert (d.ttft_slo_s, d.tpot_slo_s, d.searched) == (0.1, 0.0035, 4 * 2 * 3)


def test_the_query_and_the_search_reach_the_plan(result: rooflm.PlanResult) -> None:
    """The figure's search is the plan's: a Query's KV dtype and token budget become the values searched."""
    d = rooflm.plot.figure_data("pareto", QUERY, **SEARCH)
    assert d == from_result(result)


# SVG (matplotlib) and HTML (plotly): the two drawing paths. A PNG is the same matplotlib figure saved by the same
# function (mpl_base.save); test_plot.py checks a PNG's pixels.
@pytest.mark.parametrize("suffix", [".svg", ".html"])
def test_each_format_writes(suffix: str, tmp_path: Path) -> None:
    path = render("pareto", tmp_path / f"pareto{suffix}", QUERY, **SEARCH)
    if suffix == ".svg":
        text = _svg_text(path)
        for words in ("output tokens/s per user (interactivity)", "output tokens/s per GPU (throughput)",
                      "Pareto frontier", "best within the targets", "TPOT target 3.5 ms (1 / TPOT)",
                      "TTFT target 100 ms", "Pareto frontier of 24 configurations (24 fit)"):
            assert words in text, words
    else:
        html = path.read_text()
        assert "Pareto frontier" in html and "TPOT target 3.5 ms" in html and "best within the targets" in html


def test_a_target_nobody_meets_is_said_on_the_figure(tmp_path: Path) -> None:
    path = render("pareto", tmp_path / "none.svg", QUERY, **{**SEARCH, "tpot_slo": 1e-6})
    assert "no configuration meets the targets" in _svg_text(path)


def test_the_api_draws_a_result_or_plans_itself(result: rooflm.PlanResult) -> None:
    fig = rooflm.plot.pareto(result)
    assert fig.axes[0].get_xlabel() == "output tokens/s per user (interactivity)"
    fresh = rooflm.plot.pareto(model="llama-3.1-8b", hardware="h100-sxm", **{**PLAN, "concurrency": [1, 8]})
    assert len(fresh.axes) == 1


def test_cli_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "p.svg"
    r = runner.invoke(app, ["plot", "pareto", "-o", str(out), *CLI, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"kind": "pareto", "output": str(out), "format": "svg"}
    # The plan's default engine limits: 5 max_running values at the one token budget given, 3 layouts and 1P:1D,
    # 3 loads.
    assert "Pareto frontier of 60 configurations" in _svg_text(out)


@pytest.mark.parametrize(("args", "words"), [
    (["pareto", "--tp", "2"], "--tp: `plot pareto` searches every layout"),
    (["pareto", "--request-rate", "2"], "--request-rate: `plot pareto` searches closed loops"),
    (["pareto", "--batch", "8"], "--batch: `plot pareto` sets the load with --concurrency"),
    (["pareto", "--gpus", "0"], "--gpus must be an integer between 1"),
    (["roofline", "--gpus", "8"], "--gpus: only `rooflm plot pareto`"),
    (["serving", "--tpot-slo", "0.01"], "--tpot-slo: only `rooflm plot pareto`"),
])
def test_bad_flags_are_refused_on_one_line(args: list[str], words: str, tmp_path: Path) -> None:
    r = runner.invoke(app, ["plot", args[0], "-o", str(tmp_path / "x.png"), *args[1:]])
    assert r.exit_code == 2 and words in " ".join(r.output.split()), r.output


def test_the_api_refuses_a_fixed_layout() -> None:
    with pytest.raises(InvalidInputError, match="searches every layout") as e:
        rooflm.plot.figure_data("pareto", QUERY.replace(tp=2), **SEARCH)
    assert e.value.field == "tp"


def test_a_disaggregated_point_is_labelled_with_its_split(result: rooflm.PlanResult) -> None:
    split = [p for p in result.pareto if p.config["disaggregate"] is not None]
    assert split, "1P:1D of two 1-GPU replicas reaches the frontier at 64 users"
    assert label(split[0]).startswith("tp1 1P:1D fp8/kv fp8, ")  # the replicas' layout (no dp), then the split
