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
from rooflm.core.profile_params import OVERLAP, PER_FAMILY, STEP, check_factor_name
from rooflm.errors import InvalidInputError
from rooflm.specs.files import check_output

KINDS = (*PER_FAMILY, STEP, OVERLAP)

if TYPE_CHECKING:  # solve and profile import scipy (~0.5 s): at first use, not with every command's start
    from rooflm.fit.solve import DeviceFit, Errors


@user_errors
@with_wide
def fit_command(
    data: Annotated[Path, typer.Argument(help="Measurement table (.csv or .json); see examples/measurements.csv.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the profile (TOML) here.")] = None,
    params: Annotated[str | None, typer.Option(
        help="Factors to fit, comma-separated: kinds (bandwidth, compute, fixed, step, comm_overlap) or names "
             "(bandwidth.dense); default: every one the data is sensitive to."
    )] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Write the profile even when it does not beat the catalog on held-out configurations.")] = False,
    as_json: Json = False,
) -> None:
    """Fit factors on calibrated mode's curves to your measurements (bounded least squares on log time, regularised
    toward the catalog), validated by leaving each configuration out in turn."""
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
    losing = [f for f in fits if not f.beats_catalog]
    refused = output is not None and bool(losing) and not force
    for f in fits:
        for warning in warnings(f):
            if refused and warning in verdict(losing[0]):
                continue  # the one-line refusal below says it
            err.print(Text.assemble(("warning:", "yellow"), f" {warning}"), highlight=False, soft_wrap=True)
    if as_json:
        print_json(fit_document(fits))
    else:
        show(Group(*(_table(f) for f in fits)))
    if output is None:
        return
    if refused:
        raise InvalidInputError(f"not written: {verdict(losing[0])}; --force writes it anyway", field="output")
    write_profile(output, fits, data, __version__, named)


def verdict(f: DeviceFit) -> str:
    """Whether the fit beats the catalog on held-out configurations, in one line."""
    if f.cv_error is None:
        return (f"{f.hardware}: one configuration only, so nothing could be held out to check the fit; measure a "
                "second model, layout or scheme")
    word = "beats" if f.beats_catalog else "does not beat"
    return (f"{f.hardware}: the fit {word} the catalog on held-out configurations (median error "
            f"{f.cv_error.median_abs:.1%} against {f.catalog_error.median_abs:.1%})")


def _names(params: str | None) -> tuple[str, ...] | None:
    if params is None:
        return None
    names = tuple(n.strip().lower().replace("-", "_") for n in params.split(",") if n.strip())
    unknown = [n for n in names if not (n in KINDS or check_factor_name(n))]
    if unknown or not names:
        raise InvalidInputError(f"--params: unknown factor {', '.join(unknown) or '(none given)'}; "
                                f"known: {', '.join(KINDS)} or KIND.FAMILY (bandwidth.dense)", field="params")
    return names


def warnings(f: DeviceFit) -> list[str]:
    """What the user must know about the fit: what ended at a bound, what the data cannot tell apart, and whether
    it beats the catalog on held-out configurations."""
    out = [f"{f.hardware}: {n} ended at its bound ({v:.4g}): the data asks for a value rooflm does not allow, so it "
           "has no standard error; check the rows or leave it out (--params)" for n, v in f.at_bound]
    out += [f"{f.hardware}: the data cannot tell {a} and {b} apart (correlation {r:+.2f}); measure points where they "
            "differ (other batches, lengths or models)" for a, b, r in f.confounded]
    if not f.beats_catalog:
        out.append(verdict(f))
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
            "configurations": sum(f.configurations for f in fits),
            "beats_catalog": all(f.beats_catalog for f in fits),
            "warnings": [w for f in fits for w in warnings(f)]}


def _pct(e: Errors | None, which: str) -> str:
    return "n/a" if e is None else f"{getattr(e, which):.1%}"


def _table(f: DeviceFit) -> Table:
    t = Table(title=f"{f.hardware}: {f.points} points", title_justify="left")
    for col in ("factor", "fitted", "catalog", "± stderr"):
        t.add_column(col, justify="left" if col == "factor" else "right")
    for name, e in f.parameters.items():
        if e.fitted:  # the others stay at the catalog's figure (a factor of 1)
            t.add_row(name, f"{e.value:.4g}", f"{e.catalog:.4g}", "" if e.stderr is None else f"{e.stderr:.2g}")
    kept = len(f.parameters) - len(f.fitted_values())
    t.caption = (f"|error| median / worst: fit {_pct(f.fit_error, 'median_abs')} / {_pct(f.fit_error, 'max_abs')}; "
                 f"held-out configurations ({f.configurations}) {_pct(f.cv_error, 'median_abs')} / "
                 f"{_pct(f.cv_error, 'max_abs')}; catalog {_pct(f.catalog_error, 'median_abs')} / "
                 f"{_pct(f.catalog_error, 'max_abs')}; {kept} factors the data does not reach stay 1")
    t.caption_justify = "left"
    return t
