"""Every command and subcommand of `rooflm`, run once at a quick size: exit 0 and a value in what it prints.

The commands are enumerated from the typer app, so a new one without a case here fails `test_smoke` by name.
Quick sizes: `measure` runs a tiny plan (its --quick plan takes minutes on a 2-core machine; no eager decode steps,
which tests/measure covers) and `validate` its quickest flags (--quick, the smallest model) with two small GEMM
shapes instead of the quick grid's eight large ones. `serve` runs the real command with uvicorn.run replaced by a
stub that drives the app it was handed through FastAPI's TestClient: the port check, create_app and the page's
JSON API run; nothing listens on a socket.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from rooflm.cli import app

runner = CliRunner()
MiB = 2**20


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The full name of every command that runs something (groups are walked, not run)."""
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        yield path
        return
    for name, sub in subcommands.items():
        yield from _commands(sub, (*path, name))


COMMANDS = sorted(_commands(typer.main.get_command(app)))


@dataclass(frozen=True)
class Case:
    args: Callable[[Path], list[str]]
    check: Callable[[str, Path], None]
    setup: Callable[[pytest.MonkeyPatch], None] = field(default=lambda mp: None)


def _json_has(*keys: str) -> Callable[[str, Path], None]:
    def check(stdout: str, _: Path) -> None:
        doc = json.loads(stdout)
        assert set(keys) <= set(doc), sorted(doc)

    return check


def _tiny_measure_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    from rooflm.measure import bench

    plan = bench.Plan(device="cpu", bandwidth_bytes=(16 * MiB,), matmul_size=128, matmul_dtypes=("bf16",),
                      curve_dtypes=("bf16",), curve_m=(1, 128), layer=(128, 256), pool_bytes=16 * MiB, repeats=3,
                      quick=True, eager_layers=(), dispatch_inner=10, kernel_rows=0)
    monkeypatch.setattr(bench, "make_plan", lambda machine, quick: plan)


def _small_gemm_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("transformers")
    from rooflm.measure import runner as measure_runner

    grid = measure_runner.GemmGrid(m=(1, 16), kn=((256, 512),))
    monkeypatch.setattr(measure_runner, "gemm_grid", lambda quick: grid)


def _measured(stdout: str, tmp: Path) -> None:
    doc = json.loads(stdout)
    assert doc["memory_bandwidth"] > 0 and doc["peak_flops"]["bf16"] > 0
    assert (tmp / "measured.toml").is_file()


def _validated(stdout: str, _: Path) -> None:
    assert "hardware: Intel Xeon Platinum 8480+" in stdout
    assert "dense-tiny" in stdout and "median" in stdout


EXAMPLES = Path(__file__).parents[2] / "examples"


def _fitted(stdout: str, tmp: Path) -> None:
    doc = json.loads(stdout)
    assert doc["points"] == 28 and doc["parameters"]["bandwidth.dense"]["fitted"]
    assert "[devices." in (tmp / "profile.toml").read_text()


def _plotted(stdout: str, tmp: Path) -> None:
    doc = json.loads(stdout)
    assert doc["kind"] == "roofline" and doc["format"] == "svg"
    assert (tmp / "roofline.svg").read_text().lstrip().startswith("<?xml")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PORT = _free_port()
SERVED: dict[str, Any] = {}


def _stub_uvicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn.run(app, host=, port=) answers one request through TestClient instead of listening."""
    uvicorn = pytest.importorskip("uvicorn")
    from fastapi.testclient import TestClient

    def run(web_app: Any, host: str, port: int, **_: Any) -> None:
        with TestClient(web_app, base_url=f"http://{host}:{port}") as client:
            SERVED["hardware"] = client.get("/api/hardware").json()

    monkeypatch.setattr(uvicorn, "run", run)


def _served(_: str, __: Path) -> None:
    assert any(h["name"] == "h100-sxm" for h in SERVED["hardware"]["hardware"])


CASES: dict[tuple[str, ...], Case] = {
    ("analyze",): Case(lambda t: ["analyze", "--json"], _json_has("totals", "operators", "memory")),
    ("sweep",): Case(lambda t: ["sweep", "--batch", "1,8", "--context", "128", "--json"], _json_has("points")),
    ("critical-batch",): Case(lambda t: ["critical-batch", "--json"], _json_has("critical_batch")),
    ("quant",): Case(lambda t: ["quant", "--batch", "1,8", "--context", "128", "--json"], _json_has("summaries")),
    ("explain",): Case(lambda t: ["explain", "--json"], _json_has("levers", "markdown")),
    ("regimes",): Case(lambda t: ["regimes", "--json"], _json_has("regimes")),
    ("measure",): Case(lambda t: ["measure", "--quick", "--json", "-o", str(t / "measured.toml")], _measured,
                       _tiny_measure_plan),
    ("validate",): Case(lambda t: ["validate", "--quick", "--models", "dense-tiny", "--hardware", "xeon-8480"],
                        _validated, _small_gemm_grid),
    # One kind of factor: a quick size (the default fit of this table is tests/measure/test_validate_table's).
    ("fit",): Case(lambda t: ["fit", str(EXAMPLES / "measurements.csv"), "-o", str(t / "profile.toml"), "--params",
                              "bandwidth", "--json"], _fitted),
    ("plot",): Case(lambda t: ["plot", "roofline", "-o", str(t / "roofline.svg"), "--trajectory", "1,8", "--json"],
                    _plotted),
    ("serve",): Case(lambda t: ["serve", "--port", str(PORT)], _served, _stub_uvicorn),
    ("models", "list"): Case(lambda t: ["models", "list", "--json"], _json_has("models")),
    ("models", "show"): Case(lambda t: ["models", "show", "llama-3.1-8b", "--json"], _json_has("total_params")),
    ("hardware", "list"): Case(lambda t: ["hardware", "list", "--json"], _json_has("hardware")),
    ("serving",): Case(lambda t: ["serving", "--concurrency", "1,4", "--requests", "40", "--json"], _json_has("points")),
    ("plan",): Case(lambda t: ["plan", "--gpus", "1", "--quant", "fp8", "--kv-dtype", "fp8", "--max-running", "16",
                               "--max-tokens-per-step", "2048", "--concurrency", "1,4", "--json"], _json_has("pareto")),
    ("hardware", "show"): Case(lambda t: ["hardware", "show", "h100", "--json"], _json_has("memory_bandwidth")),
}


def test_every_case_is_a_command() -> None:
    assert set(CASES) <= set(COMMANDS), set(CASES) - set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_smoke(path: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES.get(path)
    assert case is not None, f"`rooflm {' '.join(path)}` has no smoke case: add one to CASES"
    case.setup(monkeypatch)
    result = runner.invoke(app, case.args(tmp_path))
    assert result.exit_code == 0, result.output
    case.check(result.stdout, tmp_path)


def test_groups_are_walked() -> None:
    """The enumeration reaches into subcommand groups (a group itself is never a case)."""
    assert ("models", "show") in COMMANDS and ("models",) not in COMMANDS
