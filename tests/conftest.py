"""Shared fixtures: the two catalog entries most hand derivations use."""

from __future__ import annotations

import pytest

import rooflm


@pytest.fixture(scope="session")
def llama8b() -> rooflm.ModelSpec:
    return rooflm.load_model("llama-3.1-8b")


@pytest.fixture(scope="session")
def h100() -> rooflm.HardwareSpec:
    return rooflm.load_hardware("h100-sxm")


# Modules whose tests share an expensive module fixture (a measurement, a plan search, Monte-Carlo fits, a server):
# under xdist each worker that runs one of their tests builds the fixture again, so each of these modules is sent
# whole to one worker. (xdist's own `--dist loadgroup` marks do not take with pytest 9's node ids.)
SHARED_FIXTURE_MODULES = frozenset({
    "tests/fit/test_solve.py",  # draws: 16 fits, ~8 s
    "tests/measure/test_bench.py",  # measured: the tiny microbenchmark plan, ~3 s
    "tests/measure/test_cli_measure.py",  # measured_file: `rooflm measure` on a tiny plan, 3-8 s
    "tests/measure/test_validate_table.py",  # fitted: `rooflm fit` on the example table, ~2 s
    "tests/serving/test_plan.py",  # quick: a 192-configuration plan, ~2.5 s
    "tests/web/test_browser.py",  # server: `rooflm serve` in a subprocess, ~1 s
})


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Each test its own work unit (as `--dist load`), except the modules above: one unit each."""
    from xdist.scheduler import LoadScopeScheduling

    class SharedFixtureScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in SHARED_FIXTURE_MODULES else nodeid

    return SharedFixtureScheduling(config, log)  # type: ignore[arg-type]
