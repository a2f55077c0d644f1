"""The hierarchical roofline figure: a slope per memory level, operators at their binding level's intensity."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import rooflm
from rooflm.cli import app
from rooflm.plot.levels_data import levels_data

pytest.importorskip("matplotlib")


def test_levels_data_puts_each_operator_at_its_binding_level() -> None:
    r = rooflm.analyze("llama-3.1-8b", "h100-sxm", phase="prefill", prompt_len=512)
    d = levels_data(r, rooflm.load_hardware("h100-sxm"))
    assert [s.name for s in d.levels] == ["l1", "l2", "dram"]
    qkv = next(o for o in r.operators if o.name == "qkv_proj")
    point = next(p for p in d.points if p.operator == "qkv_proj")
    assert point.level == qkv.bound_level and point.binds
    # the intensity at that level is the operator's FLOPs over that level's bytes, as the report gives them
    assert point.intensity == pytest.approx(qkv.flops / qkv.bytes_by_level[qkv.bound_level])
    everywhere = levels_data(r, rooflm.load_hardware("h100-sxm"), all_levels=True)
    assert {p.level for p in everywhere.points if p.operator == "qkv_proj"} == {"l1", "l2", "dram"}


def test_the_figure_draws_one_slope_per_level_and_the_points() -> None:
    fig = rooflm.plot.levels(model="llama-3.1-8b", hardware="h100-sxm", phase="prefill", prompt_len=512,
                             all_levels=True)
    ax = fig.axes[0]
    slopes = [line for line in ax.get_lines() if (line.get_gid() or "").startswith("level:")]
    assert [line.get_gid() for line in slopes] == ["level:l1", "level:l2", "level:dram"]
    # each slope rises at its bandwidth: y = bandwidth · x / 1e12 at the left edge, then flat at the peak
    x0, y0 = slopes[2].get_xdata()[0], slopes[2].get_ydata()[0]
    assert y0 == pytest.approx(3.35e12 * x0 / 1e12)
    assert slopes[0].get_ydata()[-1] == pytest.approx(989.4)
    scatters = [c for c in ax.collections if (c.get_gid() or "").startswith("points:")]
    assert {c.get_gid() for c in scatters} >= {"points:dram", "points:l2"}
    assert ax.get_legend().get_texts()[0].get_text().startswith("l1 ")


def _cli(*args: str) -> Result:
    return CliRunner().invoke(app, ["plot", "levels", *args])


def test_cli_writes_the_figure_with_one_slope_per_level(tmp_path: Path) -> None:
    # H100 SXM: l1 = 132 SMs x 128 B/clock x 1.83 GHz = 30.92 TB/s; l2 = 5120 B/clock x 1.83 GHz = 9.37 TB/s; DRAM
    # 3.35 TB/s (datasheet). The legend prints them to one decimal.
    out = _cli("-o", str(tmp_path / "levels.svg"), "--phase", "prefill", "--prompt-len", "512", "--all-levels",
               "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout) == {"kind": "levels", "output": str(tmp_path / "levels.svg"), "format": "svg"}
    text = (tmp_path / "levels.svg").read_text()
    assert re.findall(r"(?:l1|l2|dram) [\d.]+ TB/s", text) == ["l1 30.9 TB/s", "l2 9.4 TB/s", "dram 3.4 TB/s"]
    for suffix in ("png", "pdf", "html"):
        assert _cli("-o", str(tmp_path / f"levels.{suffix}")).exit_code == 0
    assert "Plotly.newPlot" in (tmp_path / "levels.html").read_text()


def test_the_html_figure_draws_the_same_slopes_and_points() -> None:
    pytest.importorskip("plotly")
    from rooflm.plot import figure_data
    from rooflm.plot.data import Query
    from rooflm.plot.interactive_levels import levels as html_levels

    d = figure_data("levels", Query.of(phase="prefill", prompt_len=512), all_levels=True)
    fig = html_levels(d)
    lines = {t.legendgroup: t for t in fig.data if t.mode == "lines"}
    assert list(lines) == ["l1", "l2", "dram"]
    # the l2 slope bends at its ridge: 989.4 TFLOP/s / 9.3696 TB/s = 105.60 FLOP/B, flat at the peak after it
    assert lines["l2"].x[1] == pytest.approx(105.60, abs=0.01)
    assert list(lines["l2"].y[1:]) == pytest.approx([989.4, 989.4])
    points = [(x, t.legendgroup) for t in fig.data if t.mode == "markers" for x in t.x]
    assert sorted(points) == sorted((p.intensity, p.level) for p in d.points)


def test_cli_refuses_level_flags_where_they_do_not_apply(tmp_path: Path) -> None:
    wrong = CliRunner().invoke(app, ["plot", "roofline", "-o", str(tmp_path / "r.svg"), "--all-levels"])
    assert wrong.exit_code == 2 and "--all-levels" in wrong.stderr
    several = _cli("-o", str(tmp_path / "l.svg"), "--batch", "1,8")
    assert several.exit_code == 2 and "one batch" in several.stderr
