"""Speed of the core paths on this machine (run by hand; figures go in the README and the notes).

    python benchmarks/bench_core.py

Targets: one `analyze` through the API under 2 ms; the 12,288-point sweep under 1 s.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable

import rooflm


def timeit(fn: Callable[[], object], repeat: int, number: int) -> tuple[float, float]:
    """Median and best seconds per call over ``repeat`` rounds of ``number`` calls (after one warm-up)."""
    fn()
    rounds = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        rounds.append((time.perf_counter() - t0) / number)
    return statistics.median(rounds), min(rounds)


def main() -> None:
    model = rooflm.load_model("llama-3.1-8b")
    hw = rooflm.load_hardware("h100-sxm")
    cases: list[tuple[str, Callable[[], object], int, int]] = [
        ("analyze decode (API)", lambda: rooflm.analyze(model, hw, batch=64, context=4096), 7, 200),
        ("analyze prefill (API)", lambda: rooflm.analyze(model, hw, phase="prefill", prompt_len=2048), 7, 200),
        ("analyze e2e, 256 tokens (API)", lambda: rooflm.analyze(model, hw, phase="e2e", batch=8, gen_len=256), 7, 50),
        ("analyze by names (API)", lambda: rooflm.analyze("llama-3.1-8b", "h100-sxm", batch=64), 7, 200),
        ("sweep 4096 x 3 = 12,288 points", lambda: rooflm.sweep(model, hw, batch=range(1, 4097),
                                                                 context=[128, 1024, 8192]), 5, 3),
        ("sweep 12,288 points + .points()", lambda: rooflm.sweep(model, hw, batch=range(1, 4097),
                                                                  context=[128, 1024, 8192]).points(), 5, 3),
        ("critical_batch", lambda: rooflm.critical_batch(model, hw), 7, 100),
    ]
    print(f"python {platform.python_version()} on {platform.machine()}, {platform.processor() or 'cpu'}")
    for label, fn, repeat, number in cases:
        median, best = timeit(fn, repeat, number)
        print(f"{label:<36} median {median * 1e3:8.3f} ms   best {best * 1e3:8.3f} ms")


if __name__ == "__main__":
    main()
