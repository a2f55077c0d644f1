"""Fit a rooflm profile to this machine's own `rooflm validate` measurements and check it on held-out cases.

    python benchmarks/fit_on_machine.py [--quick] [--runs 3] [--out measurements] [--hardware FILE] [--resume]

1. `rooflm measure -o <stem>.toml` (unless --hardware names a measured file): the default calibration.
2. `rooflm validate --hardware <that file> --no-gemms --write-table run<k>.csv`, --runs times: every model step of
   validate's grid timed (each run's figure is the median of its timed repeats), as `rooflm fit` tables.
3. One table of the per-case medians over the runs (<stem>.csv), split deterministically in two halves: within each
   model's decode and prefill series, ordered by context (or prompt length) then batch, the 1st, 3rd, 5th, …
   case is fitted on (<stem>.fit.csv) and the 2nd, 4th, … is held out (<stem>.held-out.csv).
4. `rooflm fit <stem>.fit.csv -o <stem>.profile.toml`, then `rooflm validate --table <stem>.held-out.csv` with and
   without `--profile`: the held-out |error| with the fitted profile against the default calibration's.
Everything is written under --out as <date>-<slug>-fit.* (<stem>.json: every document; the models' config.json
files in <stem>.models/), and the summary is printed. Other processes make CPU timings slower and noisier: the
script waits (a while) for idle CPUs before each step and records how busy they were.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from rooflm.measure.machine import cpu_busy_fraction, describe_machine

KEY = ("model", "phase", "batch", "prompt_len", "context")


def wait_for_idle(threshold: float, quiet_seconds: int, timeout_s: float) -> float:
    """Wait until the CPUs were at most ``threshold`` busy for ``quiet_seconds`` seconds in a row (or time out)."""
    import time

    start, quiet, busy = time.monotonic(), 0, 1.0
    while quiet < quiet_seconds and time.monotonic() - start < timeout_s:
        busy = cpu_busy_fraction(1.0)
        quiet = quiet + 1 if busy <= threshold else 0
    return busy


def rooflm(*args: str) -> Any:
    command = [sys.executable, "-c", "from rooflm.cli import app; app()", *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"rooflm {' '.join(args)} failed: {done.stderr.strip()}")
    return json.loads(done.stdout) if "--json" in args else done.stdout


def read_rows(path: Path) -> list[dict[str, str]]:
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return list(csv.DictReader(lines))


def merge(runs: list[Path]) -> list[dict[str, Any]]:
    """Per case (model name, phase, batch, lengths): the median of the runs' measured seconds, in the first run's
    order; the model is named by its folder (run<k>.models/<name>/config.json)."""
    times: dict[tuple[str, ...], list[float]] = defaultdict(list)
    for run in runs:
        for row in read_rows(run):
            row["model"] = Path(row["model"]).parent.name
            times[tuple(row[k] for k in KEY)].append(float(row["measured_s"]))
    return [{**dict(zip(KEY, key, strict=True)), "measured_s": statistics.median(v), "runs": v}
            for key, v in times.items()]


def split(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Alternate cases of each (model, phase) series, ordered by context or prompt length, then batch."""
    series: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        series[r["model"], r["phase"]].append(r)
    fit_half, held = [], []
    for cases in series.values():
        cases.sort(key=lambda r: (int(r["context"] or 0), int(r["prompt_len"] or 0), int(r["batch"])))
        fit_half += cases[0::2]
        held += cases[1::2]
    return fit_half, held


def write_table(path: Path, rows: list[dict[str, Any]], hardware: str, note: str) -> None:
    with path.open("w", newline="") as f:
        f.write("".join(f"# {line}\n" for line in note.splitlines()))
        w = csv.writer(f, lineterminator="\n")
        w.writerow(("model", "hardware", "phase", "batch", "prompt_len", "context", "measured_s"))
        for r in rows:
            model = f"{path.name.split('.')[0]}.models/{r['model']}/config.json"
            w.writerow((model, hardware, r["phase"], r["batch"], r["prompt_len"], r["context"],
                        f"{r['measured_s']:.6g}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="validate's quick grid (18 model steps, 3 repeats)")
    parser.add_argument("--runs", type=int, default=3, help="whole validate runs; each case's median is kept")
    parser.add_argument("--out", type=Path, default=Path("measurements"))
    parser.add_argument("--hardware", type=Path, help="a measured hardware file (default: measure now)")
    parser.add_argument("--idle", type=float, default=0.3, help="CPU share others may use before a step (0-1)")
    parser.add_argument("--wait", type=float, default=120, help="seconds to wait for that at most")
    parser.add_argument("--resume", action="store_true", help="keep the hardware file and the run tables already "
                        "written under --out (an interrupted invocation's); measure only what is missing")
    args = parser.parse_args()
    machine = describe_machine("cpu")
    stem = args.out / f"{machine.date}-{machine.slug}-fit"
    quick = ["--quick"] if args.quick else []
    busy: dict[str, float] = {}
    if args.resume and args.hardware is None and stem.with_suffix(".toml").is_file():
        args.hardware = stem.with_suffix(".toml")
    if args.hardware is None:
        busy["measure"] = wait_for_idle(args.idle, 5, args.wait)
        rooflm("measure", "--quick", "-o", str(stem.with_suffix(".toml")))
        hardware = stem.with_suffix(".toml")
    else:
        hardware = stem.with_suffix(".toml")
        if args.hardware.resolve() != hardware.resolve():
            shutil.copy(args.hardware, hardware)
    runs, validated = [], []
    run_folder = stem.parent / f"{stem.name}.runs"  # each run's own table, kept as measured
    run_folder.mkdir(parents=True, exist_ok=True)
    for k in range(args.runs):
        run = run_folder / f"run{k + 1}.csv"
        runs.append(run)
        if args.resume and run.is_file():  # measured by an earlier, interrupted invocation
            continue
        busy[f"validate {k + 1}"] = wait_for_idle(args.idle, 5, args.wait)
        validated.append(rooflm("validate", *quick, "--no-gemms", "--hardware", str(hardware),
                                "--write-table", str(run), "--json"))
        print(f"validate run {k + 1}/{args.runs} done (CPUs {busy[f'validate {k + 1}']:.0%} busy before it)",
              file=sys.stderr)
    models = stem.parent / f"{stem.name}.models"
    shutil.rmtree(models, ignore_errors=True)
    shutil.copytree(run_folder / "run1.models", models)
    rows = merge(runs)
    note = (f"rooflm validate's model steps on {machine.describe()}: each measured_s is the median over "
            f"{args.runs} validate runs of each run's median of {3 if args.quick else 7} timed repeats "
            "(benchmarks/fit_on_machine.py).")
    fit_half, held = split(rows)
    tables = {"all": stem.with_suffix(".csv"), "fit": stem.with_suffix(".fit.csv"),
              "held": stem.with_suffix(".held-out.csv")}
    for which, part in (("all", rows), ("fit", fit_half), ("held", held)):
        write_table(tables[which], part, hardware.name, note + f"\n{which}: {len(part)} cases")
    profile = stem.with_suffix(".profile.toml")
    fitted = rooflm("fit", str(tables["fit"]), "-o", str(profile), "--json")
    default = rooflm("validate", "--table", str(tables["held"]), "--json")
    with_profile = rooflm("validate", "--table", str(tables["held"]), "--profile", str(profile), "--json")
    doc = {"machine": machine.model_dump(), "busy_before": busy, "runs": args.runs, "quick": args.quick,
           "cases": rows, "fit_cases": len(fit_half), "held_out_cases": len(held), "fit": fitted,
           "held_out": {"default": default, "profile": with_profile}, "validate_runs": validated}
    stem.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{len(rows)} cases, fitted on {len(fit_half)}, held out {len(held)}; fitted "
          f"{', '.join(n for n, e in fitted['parameters'].items() if e['fitted'])}")
    for name, v in (("default calibration", default), ("fitted profile", with_profile)):
        print(f"held-out |error| median / worst, {name}: {v['error']['median_abs']:.1%} / {v['error']['max_abs']:.1%}")
    print(f"wrote {stem}.*", file=sys.stderr)


if __name__ == "__main__":
    main()
