"""`rooflm measure` and `rooflm validate`: the roofline of this machine, and rooflm's predictions against a clock.

Registered on ``rooflm.cli.app`` by cli.py. PyTorch (and, for validate, transformers)
is imported only when a command runs, so every other command works without the ``[measure]`` extra.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from rooflm.cli.options import Json
from rooflm.cli.output import err, out, print_json, show, user_errors, with_wide
from rooflm.core.inputs import DEPLOYMENT_FIELDS
from rooflm.errors import InvalidInputError
from rooflm.specs.files import check_output
from rooflm.specs.hardware import HardwareSpec, load_hardware

Device = Annotated[str, typer.Option(help="cpu | cuda")]
Quick = Annotated[bool, typer.Option("--quick", help="Fewer sizes and repeats (under a minute on a 2-core CPU).")]
Table = Annotated[Path | None, typer.Option(help="A measurement table (`rooflm fit`'s format): compare its rows with "
                                            "rooflm's predictions instead of timing PyTorch runs.")]
WriteTable = Annotated[Path | None, typer.Option(help="Also write the measured model steps as a `rooflm fit` table "
                                                 "(CSV; the models' config.json files go beside it).")]
QuantFlag = Annotated[bool, typer.Option("--quant", help="Time bf16 vs int8 vs int4 weight GEMMs and decode steps "
                                         "over the batch (CPU kernels) against rooflm's predicted speed-ups.")]
# --profile is a deployment flag (rooflm.core.inputs.Deployment): validate declares it with the same help.
ProfileFlag = Annotated[str | None, typer.Option(help=next(f.flag.help for f in DEPLOYMENT_FIELDS if f.name == "profile")
                                                 + " With --table only.")]


@contextmanager
def progress_bar(total: int, title: str) -> Iterator[Callable[[str], None]]:
    """A rich progress bar on stderr; the yielded function is called before each step with its label. Piped or
    redirected, no bar: the function does nothing."""
    if not err.is_terminal:
        yield lambda label: None
        return
    columns = (SpinnerColumn(), TextColumn("{task.description:<48}", markup=False), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(title, total=total)
        started = [False]

        def step(label: str) -> None:
            if started[0]:
                bar.advance(task)
            started[0] = True
            bar.update(task, description=label)

        yield step


def _measure(device: str, quick: bool) -> tuple[Any, Any]:
    from rooflm.measure.bench import make_plan, measure_machine
    from rooflm.measure.calibrate import calibrate
    from rooflm.measure.machine import describe_machine

    machine = describe_machine(device)
    plan = make_plan(machine, quick)
    with progress_bar(plan.steps, "measuring") as step:
        measurements = measure_machine(machine, plan, step)
    if machine.busy_fraction > 0.1:
        err.print(Text.assemble(("warning:", "yellow"), f" other processes kept {machine.busy_fraction:.0%} of the CPUs "
                                "busy just before measuring; timings may be noisy"), highlight=False)
    return measurements, calibrate(measurements)


def measure_doc(m: Any, cal: Any, path: Path | None) -> dict[str, Any]:
    return {
        "machine": m.machine.model_dump(), "quick": m.quick, "hardware_file": None if path is None else str(path),
        "memory_bandwidth": cal.memory_bandwidth, "peak_flops": cal.peak_flops,
        "ridge": {d: v / cal.memory_bandwidth for d, v in cal.peak_flops.items()},
        "kernel_launch_overhead_s": cal.dispatch_overhead_s, "operator_overhead_s": cal.op_overhead_s,
        "forward_overhead_s": cal.step_overhead_s,
        "efficiency": {"memory": cal.memory_efficiency, "compute": cal.compute_efficiency,
                       "compute_curve": {d: {"rows": r, "value": v} for d, (r, v) in cal.compute_curve.items()}},
        "gemm_curve": [{"dtype": p.dtype, "m": p.m, "arithmetic_intensity": p.arithmetic_intensity,
                        "flops_per_s": p.median_flops_per_s, "bytes_per_s": p.median_bytes_per_s,
                        "spread": p.run.spread} for p in m.curve],
        "working_set": _working_set_doc(m, cal),
        "raw": m.model_dump(mode="json"),
    }


def _working_set_doc(m: Any, cal: Any) -> dict[str, Any]:
    """The cache-level sweep (CPU): its plateaus and the levels the hardware file carries."""
    from rooflm.measure.working_set import measured_levels, plateaus

    return {"plateaus": [{"from_bytes": a, "to_bytes": b, "bandwidth": bw} for a, b, bw in plateaus(m.working_set)],
            "levels": [{"name": n, "bandwidth": bw, "capacity": cap} for n, bw, cap in
                       measured_levels(m.working_set, m.machine.caches_bytes, m.machine.threads, cal.memory_bandwidth)]}


@user_errors
@with_wide
def measure(device: Device = "cpu", quick: Quick = False, as_json: Json = False,
            output: Annotated[Path | None, typer.Option("--output", "-o", help="Write a hardware .toml here.")] = None,
            name: Annotated[str | None, typer.Option(help="Name inside the hardware file.")] = None) -> None:
    """Measure this machine's roofline (bandwidth, peak FLOP/s per dtype, GEMM curve, overheads) with PyTorch."""
    from rooflm.measure.hwfile import write_hardware_file
    from rooflm.measure.render import measurement
    from rooflm.measure.timing import require_torch

    _check_device(device)
    if output is not None:  # refused before minutes of measuring
        if output.suffix != ".toml":
            raise InvalidInputError(f"-o {output}: a hardware file must end in .toml", field="output")
        from rooflm.measure.hwfile import raw_path

        for path in (output, raw_path(output)):
            check_output(path, str(path), field="output")
    require_torch()
    m, cal = _measure(device, quick)
    if output is not None:
        write_hardware_file(output, cal, m, name)
    if as_json:
        print_json(measure_doc(m, cal, output))
        return
    show(measurement(m, cal))
    for p in _working_set_doc(m, cal)["plateaus"]:
        out.print(f"read bandwidth {p['bandwidth'] / 1e9:,.1f} GB/s for working sets of {p['from_bytes'] / 2**10:,.0f} "
                  f"to {p['to_bytes'] / 2**10:,.0f} KiB", highlight=False)
    if output is not None:
        out.print(f"wrote {output} (use it as --hardware {output}) and its raw measurements beside it")


def _check_device(device: str) -> None:
    """--device names the device kind before anything is measured (the machine's description checks it again)."""
    if device != "cpu" and not device.startswith("cuda"):
        raise InvalidInputError(f"--device must be cpu or cuda, got {device!r}", field="device")


def _check_models(models: str | None, quick: bool) -> list[Any]:
    """The validation models --models picks (all without it), refused before anything is measured."""
    from rooflm.measure.runner import validation_models

    cases = validation_models(quick)
    if models is None:
        return cases
    wanted = {m.strip() for m in models.split(",")}
    unknown = wanted - {c.name for c in cases}
    if unknown:
        raise InvalidInputError(f"--models: unknown {sorted(unknown)}; known: {[c.name for c in cases]}",
                                field="models")
    return [c for c in cases if c.name in wanted]


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rooflm"


def _hardware_for_validation(hardware: str | None, device: str, remeasure: bool) -> tuple[HardwareSpec, Path | None]:
    """The given file; else this machine's cached measurement; else measure now (quick) and cache it."""
    from rooflm.measure.hwfile import default_name, write_hardware_file
    from rooflm.measure.machine import describe_machine

    if hardware is not None:
        return load_hardware(hardware), Path(hardware) if hardware.endswith(".toml") else None
    path = cache_dir() / f"{default_name(describe_machine(device))}.toml"
    if path.is_file() and not remeasure:
        err.print(f"using the cached measurement {path} (--remeasure to redo it)", highlight=False)
        return load_hardware(path), path
    err.print("no hardware file given: measuring this machine first (--quick)", highlight=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"cannot create the cache folder {path.parent}: {exc.strerror}") from None
    m, cal = _measure(device, quick=True)
    return write_hardware_file(path, cal, m), path


@user_errors
@with_wide
def validate(quick: Quick = False, as_json: Json = False, device: Device = "cpu",
             hardware: Annotated[str | None, typer.Option("--hardware", "-H", help="A measured .toml (or catalog "
                                                          "name); default: measure this machine, cached")] = None,
             remeasure: Annotated[bool, typer.Option(help="Ignore the cached measurement.")] = False,
             models: Annotated[str | None, typer.Option(help="Only these test models, e.g. dense-small.")] = None,
             gemms: Annotated[bool, typer.Option(help="Also validate single GEMMs over M, N, K.")] = True,
             table: Table = None, profile: ProfileFlag = None, write_table: WriteTable = None,
             quant: QuantFlag = False) -> None:
    """Compare rooflm's predictions with PyTorch runs on this machine, or with a table of your measurements.

    Runs small transformers models and single GEMMs with PyTorch and compares with rooflm's predictions; or, with
    --table, compares a measurement table's rows with them (no PyTorch); or, with --quant, times int8/int4 weights."""
    _check_device(device)
    if quant:
        if table is not None or models is not None:
            raise InvalidInputError("--quant: it times its own GEMMs and steps; drop --table and --models",
                                    field="quant")
        if device != "cpu":
            raise InvalidInputError("--quant: PyTorch's int8/int4 weight kernels timed here are CPU kernels; drop "
                                    "--device", field="device")
        from rooflm.cli.measure_quant import validate_quant

        validate_quant(*_hardware_for_validation(hardware, device, remeasure), quick, as_json, progress_bar)
        return
    if table is not None:
        if write_table is not None:
            raise InvalidInputError("--write-table: it writes what validate measured; drop --table", field="write_table")
        if hardware is not None or models is not None:
            raise InvalidInputError("--table: each row names its model and hardware; drop --hardware and --models",
                                    field="table")
        _validate_table(table, profile, as_json)
        return
    if profile is not None:
        raise InvalidInputError("--profile: validate predicts with a profile against a --table only", field="profile")
    # Every argument is checked before minutes of measuring: the table's name and folder, the models, the hardware.
    if write_table is not None:
        if write_table.suffix.lower() != ".csv":
            raise InvalidInputError(f"--write-table {write_table}: the table is written as CSV; name it .csv",
                                    field="write_table")
        check_output(write_table, str(write_table), [hardware], field="write_table")
    cases = _check_models(models, quick)
    if hardware is not None:
        load_hardware(hardware)
    from rooflm.measure.bench import past_cache_bytes
    from rooflm.measure.render import cases_table, classes_table, gemm_table, summary_table
    from rooflm.measure.runner import gemm_grid, run_gemms, run_model
    from rooflm.measure.timing import require_torch, require_transformers
    from rooflm.measure.validate import infer_measured_bounds, summarize

    require_torch()
    require_transformers()
    hw, hw_path = _hardware_for_validation(hardware, device, remeasure)
    grid = gemm_grid(quick)
    total = sum(len(c.decode) + len(c.prefill) for c in cases) + (len(grid.m) * len(grid.kn) if gemms else 0)
    repeats = 3 if quick else 7
    results, skipped = [], []
    with progress_bar(total, "validating") as step:
        for case in cases:
            run = run_model(case, hw, repeats, step, device)
            if run.skipped:
                skipped.append({"model": case.name, "reason": run.skipped})
            results += run.results
        llc = max((f.value for f in hw.caches.values()), default=32 * 2**20)
        pool = past_cache_bytes(llc, hw.memory_capacity.value)
        gemm_results = run_gemms(grid, hw, repeats, pool, step, device) if gemms else []
    results = infer_measured_bounds(results, hw.memory_bandwidth.value * hw.efficiency.memory.value)
    s = summarize(results, gemm_results)
    if write_table is not None:
        _write_table(write_table, cases, results, hw_path or hw.name, repeats, device)
    if as_json:
        print_json({"hardware": hw.name, "hardware_file": None if hw_path is None else str(hw_path), "quick": quick,
               "cases": [c.to_json_dict() for c in results],
               "median_abs_error": s.all.median_abs_error, "median_abs_error_decode": s.decode.median_abs_error,
               "median_abs_error_prefill": s.prefill.median_abs_error, "worst_abs_error": s.all.worst_abs_error,
               "ideal_violations": s.all.ideal_violations, "bound_agreement": s.bound_agreement,
               "gemm": {"cases": [g.to_json_dict() for g in gemm_results], **s.gemm.model_dump()},
               "summary": s.model_dump(), "skipped": skipped})
        return
    out.print(f"hardware: {hw.display_name}", highlight=False)
    show(cases_table(results))
    per_class = classes_table(results)
    if per_class is not None:
        show(per_class)
    if gemm_results:
        show(gemm_table(gemm_results))
    show(summary_table(s))
    if s.bound_agreement is not None:
        out.print(f"bound: predicted = measured in {s.bound_agreement:.0%} of {s.bound_cases} cases "
                  "(measured bound from how the time grows along each sweep)", highlight=False)
    for sk in skipped:
        out.print(Text.assemble(("skipped", "yellow"), f" {sk['model']}: {sk['reason']}"), highlight=False)


def _write_table(path: Path, cases: list[Any], results: list[Any], hardware: str | Path, repeats: int,
                 device: str) -> None:
    """The measured steps as a fit table at ``path``, each model's config.json in ``<stem>.models/<name>/``."""
    from rooflm.measure.configs import write_config
    from rooflm.measure.machine import describe_machine
    from rooflm.measure.validate import write_fit_table

    folder = path.parent / f"{path.stem}.models"
    configs = {c.name: write_config(c.config, folder, c.name) for c in cases}
    m = describe_machine(device)
    note = (f"Measured by `rooflm validate` on {m.describe()}; each measured_s is the median of {repeats} timed runs "
            "after a warm-up.\n"
            "Fit it with `rooflm fit`; check a profile on it with `rooflm validate --table`.")
    write_fit_table(path, results, configs, hardware, note)
    err.print(f"wrote the measured steps to {path} (a rooflm fit table)", highlight=False)


def _validate_table(table: Path, profile: str | None, as_json: bool) -> None:
    from rooflm.measure.render import table_points
    from rooflm.measure.validate import validate_table

    v = validate_table(table, profile)
    if as_json:
        print_json({"points": [p.model_dump() for p in v.points],
                    "error": {"median_abs": v.median_abs, "max_abs": v.max_abs}, "profile": v.profile})
        return
    show(table_points(v))
