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
