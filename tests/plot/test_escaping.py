"""Names the user gives (a hardware file's name and display_name, a model's folder) reach figures as literal text:
plotly reads a subset of HTML in titles, legends and hover text, matplotlib reads $...$ as mathtext."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rooflm.cli import app
from rooflm.plot import figure_data, style
from rooflm.plot.data import Query
from rooflm.specs.hardware import HARDWARE_DIR, hardware_from_text

LINK = '<a href="https://evil.example">click</a>'
STYLED = '<span style="font-size:60px;color:red">big</span>'
HOSTILE = f"{LINK} {STYLED} %{{x}} $x^2$ & co"
STATIC = Path(__file__).parents[2] / "src" / "rooflm" / "web" / "static"


def _hostile_toml() -> str:
    text = (HARDWARE_DIR / "h100-sxm.toml").read_text()
    text = re.sub(r'^display_name = .*$', f"display_name = {json.dumps(HOSTILE)}", text, count=1, flags=re.M)
    return re.sub(r'^name = .*$', f"name = {json.dumps('gpu ' + LINK)}", text, count=1, flags=re.M)


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            yield from _strings(v)


def _no_live_markup(figure: dict[str, Any]) -> None:
    """No text of the figure holds a tag plotly would draw from the names (its own are <br> and <extra>), and the title
    shows the names literally once plotly decodes its entities."""
    for text in _strings(figure):
        tags = set(re.findall(r"<\s*(\w+)", text))
        assert tags <= {"br", "extra"}, text
        assert "%{x}" not in text  # the name's template would be filled in
    title = html.unescape(figure["layout"]["title"]["text"])
    assert HOSTILE in title or "gpu " + LINK in title, title


def test_plotly_text_escapes_tags_entities_and_templates() -> None:
    # The three characters HTML reads, and the % that starts a hover template: each as an entity plotly decodes back.
    assert style.plotly_text('<a href="x">&%{y}') == '&lt;a href="x"&gt;&amp;&#37;{y}'
    assert html.unescape(style.plotly_text(HOSTILE)) == HOSTILE


@pytest.mark.parametrize("kind", ["roofline", "batch", "breakdown", "memory", "levels"])
def test_interactive_figures_show_a_hostile_device_literally(kind: str) -> None:
    from rooflm.plot import interactive

    hw = hardware_from_text(_hostile_toml(), "hostile.toml")
    query = Query.of(model="llama-3.1-8b", hardware=hw, batch=8)
    options: dict[str, Any] = {"batches": [1, 8]} if kind in ("batch", "memory") else {}
    if kind == "breakdown":
        options = {"values": [1, 8]}
    fig = getattr(interactive, kind)(figure_data(kind, query, **options))
    _no_live_markup(fig.to_plotly_json())


def test_the_serving_figure_shows_a_hostile_device_literally() -> None:
    from rooflm.plot import interactive

    hw = hardware_from_text(_hostile_toml(), "hostile.toml")
    data = figure_data("serving", Query.of(model="llama-3.1-8b", hardware=hw), concurrency=[1, 4], method="steady")
    _no_live_markup(interactive.serving(data).to_plotly_json())


def test_the_page_figure_shows_a_pasted_hostile_device_literally() -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from rooflm.web import create_app

    client = TestClient(create_app(), base_url="http://localhost")
    answer = client.post("/api/figure/roofline", json={"model": "llama-3.1-8b", "hardware_toml": _hostile_toml()})
    assert answer.status_code == 200, answer.text
    _no_live_markup(answer.json())


def test_an_html_file_holds_no_live_tag_from_a_name(tmp_path: Path) -> None:
    hw = tmp_path / "hostile.toml"
    hw.write_text(_hostile_toml())
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["plot", "roofline", "-H", str(hw), "-o", str(out)])
    assert result.exit_code == 0, result.output
    # The figure's JSON as the page holds it, its string escapes undone (plotly writes "/" as \u002f).
    page = out.read_text().replace("\\u002f", "/").replace('\\"', '"')
    assert "&lt;a href=\"https://evil.example\"&gt;click&lt;/a&gt;" in page
    assert "&lt;span style=\"font-size:60px;color:red\"&gt;big" in page
    assert '<a href="https://evil.example"' not in page and '<span style="font-size:60px' not in page


def test_matplotlib_shows_dollars_literally(tmp_path: Path) -> None:
    """A pair of $ in a name would be set as math (x with a superscript 2); escaped, the SVG (text kept as text)
    carries the name's characters as they are."""
    hw = tmp_path / "hostile.toml"
    hw.write_text(_hostile_toml())
    out = tmp_path / "r.svg"
    result = CliRunner().invoke(app, ["plot", "roofline", "-H", str(hw), "-o", str(out)])
    assert result.exit_code == 0, result.output
    svg = re.sub(r"<!--.*?-->", "", out.read_text(), flags=re.S)  # mathtext leaves its source in a comment
    assert "$x^2$" in svg
    assert "&lt;a href=" in svg and "<a href=\"https://evil" not in svg  # XML-escaped by matplotlib itself


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_page_escapes_names_in_its_own_serving_title() -> None:
    """serving.js draws the serving chart's title from the answer's names: through plotlyText, which escapes as
    style.plotly_text does (run with node on the function's own source)."""
    source = (STATIC / "serving.js").read_text()
    definition = re.search(r"^const plotlyText = .*;$", source, flags=re.M)
    assert definition is not None
    assert "text: plotlyText(servingTitle(doc))" in source
    script = f"{definition.group(0)}\nprocess.stdout.write(plotlyText({json.dumps(HOSTILE)}));"
    shown = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=30, check=True).stdout
    assert shown == style.plotly_text(HOSTILE)
