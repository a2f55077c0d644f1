"""The hierarchical roofline figure: a slope per memory level, operators at their binding level's intensity."""

from __future__ import annotations

import pytest

import rooflm
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
