"""The test suite's xdist scheduler (tests/conftest.py): every test still runs once, and each unit names real tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

TESTS = Path(__file__).parent


def _conftest() -> ModuleType:
    spec = importlib.util.spec_from_file_location("suite_conftest", TESTS / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_repeated_node_ids_are_numbered_not_merged() -> None:
    # Schemathesis's 13 operation items share one node id: keyed by node id, 12 of them were dropped (1245 tests
    # collected, 1233 run).
    ids = ["a.py::t", "a.py::op", "a.py::op", "b.py::u", "a.py::op"]
    assert _conftest().unique_node_ids(ids) == ["a.py::t", "a.py::op", "a.py::op#2", "b.py::u", "a.py::op#3"]


def test_each_unit_prefix_names_a_test_module_or_folder() -> None:
    # A renamed module would silently leave its unit (and its fixture would be built on each worker again).
    for prefix, _ in _conftest().WORKER_UNITS:
        path = TESTS.parent / prefix.split("::")[0]
        assert path.is_dir() or path.is_file(), prefix
