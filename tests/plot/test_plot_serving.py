"""`rooflm plot serving`: the latency–throughput curve draws serve_traffic's points, unchanged, in every format."""

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
from rooflm.plot import serving_data as plot_data

runner = CliRunner()
QUERY = Query.of(model="llama-3.1-8b", hardware="h100-sxm", prompt_len=512, gen_len=64)
LOADS = [1, 8, 64]
TRAFFIC = {"method": "simulate", "requests": 300, "seed": 3}


def _svg_text(path: Path) -> str:
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    return " ".join(t for el in root.iter() for t in (el.text, el.tail) if t)


def test_the_figures_data_is_serve_traffics_points() -> None:
    """Each list of the figure is the same field of the same point, in load order (the mapping, not the physics)."""
    d = rooflm.plot.figure_data("serving", QUERY, concurrency=LOADS, **TRAFFIC)
    r = rooflm.serve_traffic("llama-3.1-8b", "h100-sxm", prompt_len=512, gen_len=64, concurrency=LOADS, **TRAFFIC)
    ps = r.points
    assert d.load == "concurrency" and d.method == "simulate" and d.loads == [1.0, 8.0, 64.0]
    assert d.tokens_per_s_per_user == [p.output_tokens_per_s_per_user for p in ps]
    assert d.tokens_per_s_per_gpu == [p.output_tokens_per_s_per_gpu for p in ps]
    assert d.ttft_s == [p.ttft_s for p in ps] and d.tpot_s == [p.tpot_s for p in ps]
    assert d.ttft_p99_s == [p.percentiles["ttft_p99_s"] for p in ps]
    assert d.tpot_p99_s == [p.percentiles["tpot_p99_s"] for p in ps]
    assert d.bound == [p.bound for p in ps]
    # The axes are not swapped: interactivity falls and throughput grows with the users (1 → 64 on an 8B model).
    assert d.tokens_per_s_per_user[0] > d.tokens_per_s_per_user[-1]  # type: ignore[operator]
    assert d.tokens_per_s_per_gpu[0] < d.tokens_per_s_per_gpu[-1]  # type: ignore[operator]


def test_request_rates_and_the_deployment_pass_through() -> None:
    q = QUERY.replace(hardware="h100", tp=2)
    d = plot_data.serving_data(q, request_rate=[2.0, 20.0], method="steady")
    r = rooflm.serve_traffic("llama-3.1-8b", "h100", prompt_len=512, gen_len=64, request_rate=[2.0, 20.0],
                             method="steady", tp=2)
    assert d.load == "request_rate" and d.loads == [2.0, 20.0]
    assert d.tokens_per_s_per_gpu == [p.output_tokens_per_s_per_gpu for p in r.points]
    assert d.ttft_p99_s == [None, None]  # the steady-state model gives means only
    assert "tp=2" in d.title


def test_default_loads_are_powers_of_two_users() -> None:
    d = plot_data.serving_data(QUERY, method="steady")
    assert d.loads == [float(2**i) for i in range(10)]


# SVG (matplotlib) and HTML (plotly): the two drawing paths. A PNG is the same matplotlib figure saved by the same
# function (mpl_base.save); test_plot.py checks a PNG's pixels.
@pytest.mark.parametrize("suffix", [".svg", ".html"])
def test_each_format_writes(suffix: str, tmp_path: Path) -> None:
    path = render("serving", tmp_path / f"serving{suffix}", QUERY, concurrency=LOADS, **TRAFFIC)
    if suffix == ".svg":
        text = _svg_text(path)
        for label in ("output tokens/s per user (interactivity)", "output tokens/s per GPU (throughput)",
                      "concurrency (users)", "latency (ms)", "TTFT p99", "TPOT mean"):
            assert label in text, label
        assert all(f"{n}" in text for n in LOADS)  # each point labelled with its concurrency
    else:
        html = path.read_text()
        assert "Plotly.newPlot" in html and "per GPU (throughput)" in html and "TTFT %{customdata[1]" in html


def test_request_rate_axis_and_labels(tmp_path: Path) -> None:
    text = _svg_text(render("serving", tmp_path / "r.svg", QUERY, request_rate=[1.0, 10.0], method="steady"))
    assert "request rate (requests/s)" in text and "10/s" in text


def test_python_api_returns_a_figure() -> None:
    from matplotlib.figure import Figure

    fig = rooflm.plot.serving(concurrency=[1, 4], method="steady", model="llama-3.1-8b", prompt_len=256, gen_len=16)
    assert isinstance(fig, Figure) and len(fig.axes) == 2


def test_bad_loads_are_user_errors() -> None:
    with pytest.raises(InvalidInputError):
        plot_data.serving_data(QUERY, concurrency=[0], method="steady")


def test_cli_plot_serving(tmp_path: Path) -> None:
    out = tmp_path / "s.svg"
    r = runner.invoke(app, ["plot", "serving", "-o", str(out), "--concurrency", "1,8", "--requests", "200",
                            "--prompt-len", "256", "--gen-len", "32", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"kind": "serving", "output": str(out), "format": "svg"}
    assert "concurrency (users)" in _svg_text(out)


@pytest.mark.parametrize(("args", "flag"), [
    (["plot", "serving", "--batch", "8"], "--batch"),
    (["plot", "serving", "--context", "128"], "--context"),
    (["plot", "roofline", "--concurrency", "8"], "--concurrency"),
    (["plot", "memory", "--request-rate", "2"], "--request-rate"),
])
def test_cli_refuses_flags_of_another_kind(args: list[str], flag: str, tmp_path: Path) -> None:
    r = runner.invoke(app, [*args, "-o", str(tmp_path / "x.png")])
    assert r.exit_code != 0 and flag in r.output and "Traceback" not in r.output
    assert not (tmp_path / "x.png").exists()


def test_web_figure_endpoint_refuses_serving_naming_kind() -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from rooflm.web import create_app

    client = TestClient(create_app(), base_url="http://localhost", raise_server_exceptions=False)
    reply = client.post("/api/figure/serving", json={})
    assert reply.status_code == 422 and reply.json()["field"] == "kind"
    assert "/api/serving" in reply.json()["message"]
    assert client.post("/api/figure/memory", json={"batch": 8}).status_code == 200


def _plotly_traces(path: Path) -> list[dict[str, object]]:
    html = path.read_text()
    start = html.index("[", html.index("Plotly.newPlot("))
    traces, _ = json.JSONDecoder().raw_decode(html, start)
    return traces  # type: ignore[no-any-return]


def test_cli_plot_serving_passes_the_split_and_the_link_through(tmp_path: Path) -> None:
    """`plot serving --disaggregate 1P:3D --kv-link intra_node` draws serve_traffic's disaggregated points: the
    figure's tokens/s per GPU are those of the split over its 4 GPUs, not of one aggregated GPU."""
    out = tmp_path / "d.html"
    args = ["--concurrency", "1,8", "--method", "steady", "--prompt-len", "2000", "--gen-len", "64"]
    r = runner.invoke(app, ["plot", "serving", "-o", str(out), *args, "--disaggregate", "1P:3D", "--kv-link",
                            "intra_node", "--json"])
    assert r.exit_code == 0, r.output
    kw = {"prompt_len": 2000, "gen_len": 64, "concurrency": [1, 8], "method": "steady"}
    split = rooflm.serve_traffic("llama-3.1-8b", "h100-sxm", disaggregate="1P:3D", kv_link="intra_node", **kw)  # type: ignore[arg-type]
    alone = rooflm.serve_traffic("llama-3.1-8b", "h100-sxm", **kw)  # type: ignore[arg-type]
    drawn = _plotly_traces(out)[0]
    assert drawn["y"] == [p.output_tokens_per_s_per_gpu for p in split.points]
    assert drawn["y"] != [p.output_tokens_per_s_per_gpu for p in alone.points]
    assert "1P:3D of one device, intra-node KV link" in out.read_text()  # the title names the split and its link
    d = plot_data.serving_data(QUERY, concurrency=[8], method="steady", disaggregate="2P:2D")
    assert "2P:2D of" in d.title and d.bound == [p.bound for p in rooflm.serve_traffic(
        "llama-3.1-8b", "h100-sxm", prompt_len=512, gen_len=64, concurrency=[8], method="steady",
        disaggregate="2P:2D").points]


@pytest.mark.parametrize(("kind", "flag", "value"), [("roofline", "--disaggregate", "1P:1D"),
                                                     ("pareto", "--kv-link", "intra_node")])
def test_cli_refuses_a_split_outside_plot_serving(kind: str, flag: str, value: str, tmp_path: Path) -> None:
    r = runner.invoke(app, ["plot", kind, "-o", str(tmp_path / "x.png"), flag, value])
    assert r.exit_code != 0 and flag in r.output and "Traceback" not in r.output
    assert not (tmp_path / "x.png").exists()
