"""Timing primitives shared by every benchmark: warm-up, repeats, median and spread, device sync.

PyTorch is imported lazily (``require_torch``) so that ``import rooflm`` and every other command
work without the ``[measure]`` extra.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from rooflm.errors import RooflmError


class MissingDependencyError(RooflmError, ImportError):
    """An optional dependency (PyTorch, transformers) that this command needs is not installed."""


def require_torch() -> ModuleType:
    try:
        import torch
    except ImportError:
        raise MissingDependencyError(
            "this command needs PyTorch: install rooflm's measure extra, `pip install 'rooflm[measure]'` (torch 2.13.0)"
        ) from None
    return torch


def require_transformers() -> ModuleType:
    try:
        import transformers
    except ImportError:
        raise MissingDependencyError(
            "rooflm validate needs transformers to build the test models: `pip install transformers`"
        ) from None
    return transformers


@dataclass(frozen=True)
class Timing:
    """Seconds per call over ``repeats`` timed runs (after warm-up)."""

    median_s: float
    min_s: float
    max_s: float
    repeats: int

    @property
    def spread(self) -> float:
        """(max − min) / median: how noisy the runs were (0.05 = within 5%)."""
        return (self.max_s - self.min_s) / self.median_s if self.median_s > 0 else 0.0

    def to_dict(self) -> dict[str, float | int]:
        return {"median_s": self.median_s, "min_s": self.min_s, "max_s": self.max_s, "repeats": self.repeats,
                "spread": self.spread}


def synchronizer(device: str) -> Callable[[], None]:
    """A function that waits for queued device work: CUDA kernels run asynchronously to the host."""
    if device.startswith("cuda"):
        torch = require_torch()
        return torch.cuda.synchronize
    return lambda: None


def time_fn(fn: Callable[[], Any], *, device: str = "cpu", warmup: int = 2, repeats: int = 7, inner: int = 1,
            setup: Callable[[], Any] | None = None, clock: Callable[[], float] = time.perf_counter) -> Timing:
    """Time ``fn``: ``warmup`` untimed calls, then ``repeats`` timed samples of ``inner`` back-to-back calls each.

    ``inner`` > 1 amortises the clock and sync for work of a few microseconds. ``setup`` runs before each sample,
    outside the timed region (e.g. to rewind a KV cache). ``clock``: the wall clock, or ``time.process_time`` for the
    process's CPU time, which on a machine shared with other processes leaves out the time they hold the cores
    (meant for one intra-op thread: with more, threads spinning at a barrier would count too).
    """
    sync = synchronizer(device)
    for _ in range(warmup):
        if setup is not None:
            setup()
        fn()
    sync()
    samples: list[float] = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        sync()
        start = clock()
        for _ in range(inner):
            fn()
        sync()
        samples.append((clock() - start) / inner)
    return Timing(statistics.median(samples), min(samples), max(samples), repeats)
