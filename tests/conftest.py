"""Shared fixtures: the two catalog entries most hand derivations use."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
import typer.main
import typer.testing

import rooflm

# typer's CliRunner builds the click command from the app on every invoke: for rooflm's commands and their options
# that was ~20 ms a call and ~7% of the suite (~320 invocations). The app does not change during a run, so the
# command is built once per app. Where a typer release drops the name, the runner builds it each time as before:
# slower, never different.
if hasattr(typer.testing, "_get_command"):
    typer.testing._get_command = functools.cache(typer.main.get_command)


@pytest.fixture(scope="session", autouse=True)
def short_busy_window() -> None:
    """`measure` and `validate` watch the CPUs for a third of a second before measuring, to warn of other load
    (rooflm.measure.machine.BUSY_WINDOW_S); no test reads that warning, and the dozen runs here slept ~2 s for it."""
    from rooflm.measure import machine

    machine.BUSY_WINDOW_S = 0.01


@pytest.fixture(scope="session")
def llama8b() -> rooflm.ModelSpec:
    return rooflm.load_model("llama-3.1-8b")


@pytest.fixture(scope="session")
def h100() -> rooflm.HardwareSpec:
    return rooflm.load_hardware("h100-sxm")


# PyTorch and transformers as fixtures, imported by the first test that asks (skipped where absent), not at a test
# module's top: each xdist worker collects every module, and the two take ~3 s to import.
@pytest.fixture(scope="session")
def torch() -> Any:
    return pytest.importorskip("torch")


@pytest.fixture(scope="session")
def transformers(torch: Any) -> Any:
    return pytest.importorskip("transformers")


# Work units sent whole to one xdist worker: tests that share an expensive module fixture (a measurement, a plan
# search, Monte-Carlo fits, a server), which each worker running one of them would build again; and every test
# that imports PyTorch or transformers (~2 s for torch, ~4 s for transformers and its model code), so the other
# worker never imports them. A node id belongs to the unit of the first prefix it starts with. (xdist's own
# `--dist loadgroup` marks do not take with pytest 9's node ids.)
WORKER_UNITS: tuple[tuple[str, str], ...] = (
    ("tests/fit/test_solve.py", "fit draws"),  # draws: 16 fits, ~8 s
    ("tests/fit/test_profile.py", "example fit"),  # fits: the example table's, ~1 s
    ("tests/serving/test_plan.py", "quick plan"),  # quick: a 192-configuration plan, ~2.5 s
    ("tests/web/test_browser.py", "browser"),  # server: `rooflm serve` in a subprocess, ~1 s
    ("tests/measure/", "torch"),  # test_bench's and test_cli_measure's tiny measurements (3-8 s), the fit's table
    ("tests/test_against_torch.py", "torch"),
    ("tests/specs/test_hf_architectures.py", "torch"),
    ("tests/specs/test_hf_families.py", "torch"),
    ("tests/cli/test_smoke.py::test_smoke[measure]", "torch"),
    ("tests/cli/test_smoke.py::test_smoke[validate]", "torch"),
)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Each test its own work unit (as `--dist load`), except those of WORKER_UNITS."""
    from xdist.scheduler import LoadScopeScheduling

    class WorkerUnitScheduling(LoadScopeScheduling):
        def add_node_collection(self, node: Any, collection: Sequence[str]) -> None:
            # Schemathesis gives each API operation's item the same node id; LoadScope keys its work by node id, so
            # repeats are numbered (as the scheduler alone sees them) or all but one would never run.
            super().add_node_collection(node, unique_node_ids(collection))

        def _split_scope(self, nodeid: str) -> str:
            return next((unit for prefix, unit in WORKER_UNITS if nodeid.startswith(prefix)), nodeid)

    return WorkerUnitScheduling(config, log)  # type: ignore[arg-type]


def unique_node_ids(collection: Sequence[str]) -> list[str]:
    """The node ids in order, the second and later of a repeated one suffixed #2, #3, …"""
    seen: Counter[str] = Counter()
    out = []
    for nodeid in collection:
        seen[nodeid] += 1
        out.append(nodeid if seen[nodeid] == 1 else f"{nodeid}#{seen[nodeid]}")
    return out


# Every collected test must report: a scheduler that drops work (as WorkerUnitScheduling once did with repeated node
# ids) would otherwise leave a green run that tested less. Counted on the controller from every test's outcome.
_reported = [0]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _reported[0] += 1


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput") or exitstatus != 0 or session.config.option.collectonly:
        return  # a worker (the controller counts), a failing run already says so, or nothing ran by design
    missing = session.testscollected - _reported[0]
    if missing > 0:
        session.config.get_terminal_writer().line(
            f"error: {missing} of {session.testscollected} collected tests never ran", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
