"""Measure this machine and validate rooflm against it; write the results under measurements/.

    python benchmarks/measure_and_validate.py [--quick] [--out measurements] [--idle 0.05]

Waits until the CPUs are idle (other processes' work makes OpenMP kernels many times slower), then runs
`rooflm measure -o <date>-<slug>.toml --json` and `rooflm validate --hardware <that file> --json`, and writes
<date>-<slug>.json (both documents) beside the hardware file. The .md summary is written by hand from them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from rooflm.measure.machine import cpu_busy_fraction, describe_machine


def wait_for_idle(threshold: float, quiet_seconds: int, timeout_s: float) -> float:
    """Block until the CPUs have been busier than ``threshold`` for none of ``quiet_seconds`` consecutive seconds."""
    start, quiet = time.monotonic(), 0
    busy = 1.0
    while quiet < quiet_seconds and time.monotonic() - start < timeout_s:
        busy = cpu_busy_fraction(1.0)
        quiet = quiet + 1 if busy <= threshold else 0
    return busy


def rooflm(*args: str) -> dict:
    command = [sys.executable, "-c", "from rooflm.cli import app; app()", *args, "--json"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"rooflm {' '.join(args)} failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("measurements"))
    parser.add_argument("--idle", type=float, default=0.05, help="CPU share others may use (0-1)")
    args = parser.parse_args()
    machine = describe_machine("cpu")
    stem = args.out / f"{machine.date}-{machine.slug}"
    quick = ["--quick"] if args.quick else []
    busy = wait_for_idle(args.idle, 5, 1800)
    print(f"CPUs {busy:.0%} busy; measuring", file=sys.stderr)
    measured = rooflm("measure", *quick, "-o", str(stem.with_suffix(".toml")))
    busy = wait_for_idle(args.idle, 5, 1800)
    print(f"CPUs {busy:.0%} busy; validating", file=sys.stderr)
    validated = rooflm("validate", *quick, "--hardware", str(stem.with_suffix(".toml")))
    measured.pop("raw", None)  # kept in full in <stem>.raw.json beside the hardware file
    stem.with_suffix(".json").write_text(json.dumps({"measure": measured, "validate": validated}, indent=1) + "\n")
    print(f"wrote {stem}.toml, {stem}.raw.json and {stem}.json", file=sys.stderr)


if __name__ == "__main__":
    main()
