"""Time and peak memory of the big requests that used to run out of memory or time (run by hand):

    python benchmarks/bench_bounds.py           # everything (about 3 minutes)
    python benchmarks/bench_bounds.py --quick   # leaves out the e2e sweep of 90,000 points × 4,095 steps

Each CLI case runs as its own process with stdout to /dev/null; its peak RSS is that child's ``ru_maxrss``
(``os.wait4``, so one case's peak does not hide behind an earlier one's, as RUSAGE_CHILDREN's maximum would).
This process imports nothing of rooflm: a forked child's ru_maxrss counts the parent's RSS at the fork.
Figures measured before the chunked sweep: `sweep --batch 1:1000000 --json` 81 s and 8.5 GB; the e2e sweep
below OOM-killed at 20.6 GB; `quant --batch 1:4096 --context 1:64` 240 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time

ROOFLM = [sys.executable, "-c", "from rooflm.cli import app; app()"]
CASES: list[tuple[str, list[str], bool]] = [  # (label, arguments, slow)
    ("sweep 1:1000000 --csv", ["sweep", "--batch", "1:1000000", "--csv"], False),
    ("sweep 1:1000000 --json", ["sweep", "--batch", "1:1000000", "--json"], False),
    ("sweep e2e 1:300 x 1:300, gen 4096 --csv",
     ["sweep", "--phase", "e2e", "--batch", "1:300", "--prompt-len", "1:300", "--gen-len", "4096", "--csv"], True),
    ("quant 1:4096 x 1:64 --csv", ["quant", "--batch", "1:4096", "--context", "1:64", "--csv"], False),
    ("quant 1:4096 x 1:64 --json", ["quant", "--batch", "1:4096", "--context", "1:64", "--json"], False),
]


def run_cli(args: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (bytes) and exit status of one `rooflm` process, its output thrown away."""
    t0 = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        proc = subprocess.Popen([*ROOFLM, *args], stdout=sink, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    peak = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return wall, peak, os.waitstatus_to_exitcode(status)


# The comparison itself (4 schemes × 262,144 points, calibrated as the CLI's default), timed in a child process:
# evaluated here it would grow this process, and a forked child's ru_maxrss starts from its parent's RSS.
COMPARE_QUANT = """
import time
from rooflm.analyses.quant_comparison import compare_quant
compare_quant(batch=[1], context=[1], efficiency="calibrated")  # warm the catalog caches
t0 = time.perf_counter()
compare_quant(batch=range(1, 4097), context=range(1, 65), efficiency="calibrated")
print(time.perf_counter() - t0)
"""


def time_compare_quant() -> float:
    return float(subprocess.run([sys.executable, "-c", COMPARE_QUANT], check=True, capture_output=True,
                                text=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="leave out the slow e2e sweep")
    quick = parser.parse_args().quick
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"{'compare_quant 4096 x 64 (API, 4 schemes)':<44} {time_compare_quant():8.2f} s")
    for label, args, slow in CASES:
        if slow and quick:
            continue
        wall, peak, code = run_cli(args)
        status = "" if code == 0 else f"   exit {code}"
        print(f"{label:<44} {wall:8.2f} s   peak RSS {peak / 2**20:8.1f} MiB{status}", flush=True)


if __name__ == "__main__":
    main()
