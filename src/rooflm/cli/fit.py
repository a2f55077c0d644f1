"""`rooflm fit`: calibrated mode's parameters fitted to a table of measurements, written as a profile.

Registered on ``rooflm.cli.app`` by cli.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from rooflm import __version__
from rooflm.cli.options import Json
from rooflm.cli.output import err, print_json, progress_bar, show, user_errors, with_wide
from rooflm.core.profile_params import BY_NAME
from rooflm.errors import InvalidInputError
from rooflm.specs.files import check_output

if TYPE_CHECKING:  # solve and profile import scipy (~0.5 s): at first use, not with every command's start
    from rooflm.fit.solve import DeviceFit, Errors


@user_errors
@with_wide
def fit_command(
    data: Annotated[Path, typer.Argument(help="Measurement table (.csv or .json); see examples/measurements.csv.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the profile (TOML) here.")] = None,
    params: Annotated[str | None, typer.Option(
        help=f"Parameters to fit, comma-separated (default: those the data is sensitive to, of {', '.join(BY_NAME)})."
    )] = None,
    as_json: Json = False,
) -> None:
    """Fit calibrated mode's efficiencies and overheads to your measurements (bounded least squares on log time)."""
    from rooflm.fit.profile import write_profile
    from rooflm.fit.solve import fit
    from rooflm.fit.table import read_table

    names = _names(params)
    points = read_table(data)
    # The files the table names are inputs too: the profile must not go over any of them (checked before the fit).
    named = tuple(dict.fromkeys(v for p in points for v in (p.model, p.device)))
    if output is not None:
        check_output(output, f"profile {output}", (data, *named), field="output")
    with progress_bar("fit: fitting each device's points", quiet=as_json) as progress:
        fits = fit(points, names, progress)
    if output is not None:
        write_profile(output, fits, data, __version__, named)
    for f in fits:
        for warning in warnings(f):
            err.print(Text.assemble(("warning:", "yellow"), f" {warning}"), highlight=False, soft_wrap=True)
    if as_json:
        print_json(fit_document(fits))
    else:
        show(Group(*(_table(f) for f in fits)))


def _names(params: str | None) -> tuple[str, ...] | None:
    if params is None:
        return None
    names = tuple(n.strip().lower().replace("-", "_") for n in params.split(",") if n.strip())
    unknown = [n for n in names if n not in BY_NAME]
    if unknown or not names:
        raise InvalidInputError(f"--params: unknown parameter {', '.join(unknown) or '(none given)'}; "
                                f"known: {', '.join(BY_NAME)}", field="params")
    return names


# What separates two parameters the data confounds: the points whose times they change differently.
_SEPARATE: dict[frozenset[str], str] = {
    frozenset({"eta_memory", "eta_compute"}): "add points on both sides of the ridge: decode at batch 1 (memory-bound) "
    "and long prefills (compute-bound)",
    frozenset({"eta_memory", "kernel_overhead"}): "add points that move much data in few kernels (decode at a long "
    "context or of a large model) next to overhead-bound ones (decode at batch 1 of a small model)",
    frozenset({"eta_memory", "step_overhead"}): "add points whose steps move very different amounts of data (decode at "
    "contexts from 256 to 8192, or models of different sizes)",
    frozenset({"eta_compute", "kernel_overhead"}): "add compute-bound points of very different sizes (prefills of 512 "
    "and 8192 tokens)",
    frozenset({"eta_compute", "step_overhead"}): "add compute-bound points of very different sizes (prefills of 512 "
    "and 8192 tokens)",
}


def _advice(f: DeviceFit, a: str, b: str) -> str:
    if {a, b} != {"kernel_overhead", "step_overhead"}:
        return _SEPARATE.get(frozenset({a, b}), "measure points where they differ (other models, batches or lengths)")
    # Both add a constant per step (kernels × kernel_overhead + step_overhead): only models whose kernel counts
    # differ tell them apart, and only where the overhead is a visible share of the step.
    counts = ", ".join(f"{m} {k:.0f}" for m, k in sorted(f.kernels_per_step.items(), key=lambda mk: mk[1]))
    return ("both add a fixed time to each step (kernels per step × kernel_overhead + step_overhead), so only steps "
            f"of models with different kernel counts, where that time is a large share, separate them (kernels per step "
            f"here: {counts}); add decode points at batch 1 and a short context of small models whose counts differ "
            "by 2× or more (e.g. a small MoE: many kernels, few bytes)")


def warnings(f: DeviceFit) -> list[str]:
    """What the user must know about the fit: what was not fitted, what ended at a bound and what the data cannot
    tell apart (with what to measure to separate them)."""
    out = [f"{f.hardware}: no point is sensitive to {n}; it keeps its catalog value" for n in f.unidentified]
    out += [f"{f.hardware}: too few points to fit {n}; it keeps its catalog value" for n in f.dropped]
    out += [f"{f.hardware}: {n} ended at its bound ({v:.4g}{BY_NAME[n].unit}): the data asks for a value rooflm does "
            "not allow, so it has no standard error; fix it (--params without it) or check the rows" for n, v in f.at_bound]
    out += [f"{f.hardware}: the data cannot tell {a} and {b} apart (correlation {r:+.2f}); {_advice(f, a, b)}; or fit "
            f"one of them (--params {','.join(n for n in f.fitted_values() if n != b)})" for a, b, r in f.confounded]
    return out


def _errors(e: Errors | None) -> dict[str, float] | None:
    return None if e is None else {"median_abs": e.median_abs, "max_abs": e.max_abs}


def fit_document(fits: list[DeviceFit]) -> dict[str, Any]:
    """The --json document. One device: parameters by name; several: by "name@device". Errors over all points
    are the worst device's (a median of medians would mean nothing)."""
    several = len(fits) > 1
    parameters = {(f"{n}@{f.hardware}" if several else n): {"value": e.value, "catalog": e.catalog,
                                                              "stderr": e.stderr, "fitted": e.fitted}
                  for f in fits for n, e in f.parameters.items()}

    def worst(pick: Any) -> dict[str, float] | None:
        errs = [pick(f) for f in fits]
        if any(e is None for e in errs):
            return None
        return {"median_abs": max(e.median_abs for e in errs), "max_abs": max(e.max_abs for e in errs)}

    return {"parameters": parameters, "fit_error": worst(lambda f: f.fit_error),
            "cv_error": worst(lambda f: f.cv_error), "catalog_error": worst(lambda f: f.catalog_error),
            "points": sum(f.points for f in fits), "hardware": [f.hardware for f in fits],
            "warnings": [w for f in fits for w in warnings(f)]}


def _pct(e: Errors | None, which: str) -> str:
    return "n/a" if e is None else f"{getattr(e, which):.1%}"


def _table(f: DeviceFit) -> Table:
    t = Table(title=f"{f.hardware}: {f.points} points", title_justify="left")
    for col in ("parameter", "fitted", "catalog", "± stderr", ""):
        t.add_column(col, justify="left" if col in ("parameter", "") else "right")
    for name, e in f.parameters.items():
        unit = BY_NAME[name].unit
        t.add_row(name, f"{e.value:.4g}{unit}", f"{e.catalog:.4g}{unit}",
                  "" if e.stderr is None else f"{e.stderr:.2g}{unit}", "fitted" if e.fitted else "catalog (not fitted)")
    t.caption = (f"|error| median / worst: fit {_pct(f.fit_error, 'median_abs')} / {_pct(f.fit_error, 'max_abs')}; "
                 f"leave-one-out {_pct(f.cv_error, 'median_abs')} / {_pct(f.cv_error, 'max_abs')}; "
                 f"catalog {_pct(f.catalog_error, 'median_abs')} / {_pct(f.catalog_error, 'max_abs')}")
    t.caption_justify = "left"
    return t
