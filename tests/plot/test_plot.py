"""Figures: every kind renders to a valid PNG, SVG, PDF and offline HTML; the numbers drawn are the API's."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("matplotlib")
pytest.importorskip("plotly")

import rooflm
import rooflm.plot
from rooflm.cli import app
from rooflm.plot import Query, render
from rooflm.plot import data as plot_data

runner = CliRunner()
# A short context, so that the step's aggregate point crosses the ridge within the trajectory.
QUERY = Query.of(model="llama-3.1-8b", hardware="h100-sxm", batch=64, context=128)
OPTIONS: dict[str, dict[str, object]] = {
    "roofline": {}, "batch": {"quants": ["bf16", "fp8", "w4a16"]}, "breakdown": {}, "memory": {},
    "serving": {"concurrency": [1, 16, 256], "method": "steady"},
    "pareto": {"quants": ["fp8"], "gpus": 1, "max_running": [64], "concurrency": [1, 16, 256], "tpot_slo": 0.01,
               "workers": 1},
    "levels": {"all_levels": True},
}
# Text each SVG must hold: its axis labels, and the annotation that makes the figure's point.
SVG_TEXT: dict[str, list[str]] = {
    "roofline": ["arithmetic intensity (FLOP/byte)", "attainable performance (TFLOP/s)", "ridge 295 FLOP/B",
                 "bf16  989 TFLOP/s", "B=1"],
    "batch": ["batch (sequences)", "time per step (ms)", "output tokens/s", "B*=326"],
    "breakdown": ["batch (sequences)", "time per step (ms)", "share of step time (%)", "weight GEMMs"],
    # The engine may fill 81,559 MiB × 0.9 (vLLM's gpu_memory_utilization) − 1 GiB reserve = 75.89e9 B ("76 GB"):
    # ⌊(75.89e9 − 16.06e9 weights) / (16.78 MB KV at 128 tokens + ≈0.27 MB activations per sequence)⌋ = 3,511.
    "memory": ["batch (sequences)", "memory (GB)", "largest batch that fits: 3,511", "device memory 76 GB"],
    "serving": ["output tokens/s per user (interactivity)", "output tokens/s per GPU (throughput)",
                "concurrency (users)", "latency (ms)", "TTFT mean", "TPOT mean", "256", "memory-bound"],
    "pareto": ["output tokens/s per user (interactivity)", "output tokens/s per GPU (throughput)", "Pareto frontier",
               "TPOT target 10 ms (1 / TPOT)", "best within the targets"],
    # H100 SXM's levels: 132 SMs x 128 B/clock x 1.83 GHz = 30.9 TB/s, 5120 B/clock x 1.83 GHz = 9.4 TB/s, HBM 3.35.
    "levels": ["arithmetic intensity at the level (FLOP/byte)", "TFLOP/s", "memory level", "l1 30.9 TB/s",
               "l2 9.4 TB/s", "dram 3.4 TB/s"],
}


def _svg_text(path: Path) -> str:
    root = ET.parse(path).getroot()  # a well-formed SVG document
    assert root.tag.endswith("svg")
    return " ".join(t for el in root.iter() for t in (el.text, el.tail) if t)


def test_png_is_an_image_of_slide_size(tmp_path: Path) -> None:
    """One kind: PNG and SVG are the same matplotlib figure saved by one function (mpl_base.save), and each kind's
    size is checked on its SVG below; here the PNG's own pixels."""
    from PIL import Image

    path = render("roofline", tmp_path / "roofline.png", QUERY)
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.size == (1800, 1050)  # 12 × 7 inches at 150 dpi
        colours = im.convert("RGB").getcolors(maxcolors=1_000_000) or []
    assert len(colours) > 50  # drawn on, not blank


@pytest.mark.parametrize("kind", rooflm.plot.KINDS)
def test_svg_holds_axis_labels_and_annotations(kind: str, tmp_path: Path) -> None:
    path = render(kind, tmp_path / f"{kind}.svg", QUERY, **OPTIONS[kind])
    root = ET.parse(path).getroot()
    assert (root.get("width"), root.get("height")) == ("864pt", "504pt")  # slide size: 12 × 7 inches at 72 pt/inch
    text = _svg_text(path)
    for expected in SVG_TEXT[kind]:
        assert expected in text, f"{expected!r} missing from the {kind} SVG"


def test_pdf(tmp_path: Path) -> None:
    path = render("roofline", tmp_path / "r.pdf", QUERY)
    assert path.read_bytes()[:5] == b"%PDF-" and path.stat().st_size > 10_000


@pytest.mark.parametrize("kind", rooflm.plot.KINDS)
def test_html_works_offline(kind: str, tmp_path: Path) -> None:
    html = render(kind, tmp_path / f"{kind}.html", QUERY, **OPTIONS[kind]).read_text()
    srcs = re.findall(r"<script[^>]*\bsrc\s*=\s*['\"]?([^'\" >]+)", html, flags=re.I)
    assert not [s for s in srcs if re.match(r"(https?:)?//", s)], srcs
    assert "Plotly.newPlot" in html and len(html) > 1_000_000  # plotly.js is inline


def test_roofline_draws_the_apis_numbers() -> None:
    report = QUERY.analyze()
    d = plot_data.roofline_data(report, QUERY)
    hw = rooflm.load_hardware("h100-sxm")
    assert d.step.intensity == report.totals.arithmetic_intensity
    assert d.step.flops_per_s == report.totals.flops / report.totals.time_s
    roofs = {r.label: r for r in d.roofs}
    # NVIDIA H100 SXM datasheet: 989.4 TFLOP/s bf16, 1978.9 fp8, 3.35 TB/s: ridges 295.34 and 590.7 FLOP/B.
    assert roofs["bf16"].peak_flops == 989.4e12 and roofs["bf16"].ridge == pytest.approx(295.34, abs=0.01)
    assert roofs["bf16"].is_scheme_roof and roofs["fp8 / int8"].ridge == pytest.approx(590.72, abs=0.01)
    assert hw.ridge("bf16") == roofs["bf16"].ridge
    # A decode step reads each bf16 weight once and does 2 FLOPs with it per sequence: ≈ B FLOP/B at small batches
    # (attention, 128 tokens of KV, and activations add under 0.5% at B ≤ 4).
    assert [p.intensity for p in d.trajectory[:3]] == pytest.approx([1.0, 2.0, 4.0], rel=5e-3)
    assert [p.intensity for p in d.trajectory] == sorted(p.intensity for p in d.trajectory)
    # The trajectory crosses the ridge: memory-bound at batch 1, compute-bound at the largest batches.
    assert d.trajectory[0].bound == "memory" and d.trajectory[-1].bound == "compute"
    assert set(d.not_drawn) == {o.name for o in report.operators if o.flops == 0}
    hidden = sum(o.time_s for o in report.operators if o.name in d.not_drawn) / report.totals.time_s
    assert sum(o.time_share for o in d.operators) + hidden == pytest.approx(1.0)


def test_batch_figure_marks_the_critical_batch_of_each_scheme() -> None:
    d = plot_data.batch_data(QUERY, quants=["bf16", "w4a16"])
    assert [s.label for s in d.series] == ["bf16", "w4a16"]
    # By hand (tests/cli/test_main.py derives bf16): the weight GEMMs hold W = 7,504,658,432 weights, 525,336,576 of them
    # lm_head, and move S = 2,360,576 bf16 activation elements per token. 2·B·W / 989.4e12 ≥ (weight bytes + 2·B·S)
    # / 3.35e12 gives B* = (weight bytes / 2) / (W / 295.34 − S), with W / 295.34 − S = 23,049,375.
    # bf16: W / 23,049,375 = 325.6 → 326. w4a16 (int4 + an fp16 scale per 128 = 0.515625 B, lm_head kept bf16):
    # (0.515625 * 6,979,321,856 + 2 * 525,336,576) / 2 / 23,049,375 = 100.86 → 101.
    assert [s.critical_batch for s in d.series] == [326, 101]


def test_breakdown_layers_add_up_to_the_step() -> None:
    q = QUERY.replace(efficiency="calibrated")  # with launch overhead, shown as its own layer
    d = plot_data.breakdown_data(q, values=[1, 64, 512])
    assert "overhead" in d.layers
    for i, total in enumerate(d.total_s):
        assert sum(layer[i] for layer in d.layers.values()) == pytest.approx(total, rel=1e-9)


def test_memory_figure_marks_the_largest_batch() -> None:
    d = plot_data.memory_data(QUERY)
    # Derived in SVG_TEXT above: ⌊(75.89e9 − 16.06e9) / (16.78e6 + ≈0.27e6)⌋ = 3,511.
    assert d.max_batch == 3511
    assert max(d.batch) > d.max_batch  # drawn past the limit, so the crossing shows


def test_python_api_returns_figures() -> None:
    from matplotlib.figure import Figure

    report = rooflm.analyze("llama-3.1-8b", "h100-sxm", batch=8, context=512)
    assert isinstance(rooflm.plot.roofline(report), Figure)
    assert isinstance(rooflm.plot.roofline(model="qwen3-8b", hardware="h200", batch=4, quant="fp8"), Figure)
    assert isinstance(rooflm.plot.batch(quant="bf16,w4a16", hardware=["h100-sxm", "mi300x"], context=512), Figure)
    assert isinstance(rooflm.plot.breakdown(over="context", values=[512, 4096], batch=16), Figure)
    assert isinstance(rooflm.plot.memory(context=4096), Figure)
    # One value through the Python API: the roofline of a report names the H100 bf16 ridge, 989.4 / 3.35 = 295.
    texts = " ".join(x.get_text() for ax in rooflm.plot.roofline(report).axes for x in ax.texts)
    assert "ridge 295 FLOP/B" in texts


def test_importing_rooflm_does_not_import_matplotlib_or_plotly() -> None:
    # Nor scipy (only `fit` needs it) or torch (only `measure`/`validate`): every command's start would pay for them.
    code = ("import sys, rooflm, rooflm.cli; "
            "bad = [m for m in ('matplotlib', 'plotly', 'fastapi', 'uvicorn', 'scipy', 'torch') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_plot_writes_each_format(tmp_path: Path) -> None:
    for name, args in {
        "r.png": ["roofline", "--batch", "16", "--context", "512"],
        "b.svg": ["batch", "--quant", "bf16,fp8,w4a8", "--batch", "1:1024:x2"],
        "d.pdf": ["breakdown", "--over", "context", "--context", "256,1024,8192", "--batch", "32"],
        "m.html": ["memory", "--context", "2048"],
    }.items():
        result = runner.invoke(app, ["plot", *args, "-o", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        assert (tmp_path / name).stat().st_size > 10_000
    # The batch figure drawn by the CLI marks bf16's critical batch, 326 (derived in tests/cli/test_main.py).
    assert "B*=326" in _svg_text(tmp_path / "b.svg")


def test_cli_plot_json_names_the_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["plot", "roofline", "-o", str(tmp_path / "r.svg"), "--json"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f'{{"kind": "roofline", "output": "{tmp_path / "r.svg"}", "format": "svg"}}'


@pytest.mark.parametrize(("args", "message"), [
    (["pie", "-o", "x.png"], "unknown figure kind 'pie'"),
    (["roofline", "-o", "x.gif"], "cannot tell the format"),
    (["roofline", "--batch", "1,2", "-o", "x.png"], "give one batch"),
    (["roofline", "--quant", "bf16,fp8", "-o", "x.png"], "only `rooflm plot batch` draws several"),
    (["roofline", "--model", "llama-9", "-o", "x.png"], "unknown model 'llama-9'"),
    (["memory", "-o", "no/such/folder/m.png"], "does not exist"),
])
def test_cli_plot_mistakes_exit_2_with_one_line(args: list[str], message: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["plot", *args])
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output
    assert not list(tmp_path.iterdir())
