"""Figures of an analysis, for notebooks and scripts.

``rooflm.plot.roofline(report)`` (or ``roofline(model=..., hardware=..., batch=...)``) returns a matplotlib
``Figure``; ``batch``, ``breakdown``, ``memory`` and ``serving`` likewise. ``render`` writes any kind to a PNG, SVG or
PDF (matplotlib) or a self-contained HTML file (plotly) by the file's suffix; it is what ``rooflm plot``
runs. Every number comes from ``rooflm.analyze`` / ``sweep`` / ``critical_batch`` / ``serve_traffic``: nothing
is recomputed.

matplotlib and plotly are optional (``pip install 'rooflm[plot]'``) and imported on first use, so
``import rooflm`` stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Unpack

from rooflm.analyses.report import Report
from rooflm.errors import InvalidInputError
from rooflm.plot.data import DEFAULT_BATCHES, DEFAULT_TRAJECTORY, Query, QueryArgs
from rooflm.specs.files import check_output

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from rooflm.serving.plan_result import PlanResult

KINDS: tuple[str, ...] = ("roofline", "batch", "breakdown", "memory", "serving", "pareto", "levels")
SUFFIXES: tuple[str, ...] = (".png", ".svg", ".pdf", ".html")
Kind = Literal["roofline", "batch", "breakdown", "memory", "serving", "pareto", "levels"]

__all__ = ["KINDS", "SUFFIXES", "Query", "batch", "breakdown", "figure_data", "levels", "memory", "pareto", "render",
           "roofline", "save", "serving"]


def _mpl() -> Any:
    try:
        from rooflm.plot import mpl
    except ImportError as exc:
        raise InvalidInputError(f"PNG, SVG and PDF figures need matplotlib ({exc.name} is missing): "
                                "pip install 'rooflm[plot]'") from None
    return mpl


def _interactive() -> Any:
    try:
        from rooflm.plot import interactive
    except ImportError as exc:
        raise InvalidInputError(f"HTML figures need plotly ({exc.name} is missing): pip install 'rooflm[plot]'"
                                ) from None
    return interactive


def figure_data(kind: str, query: Query, report: Report | None = None, **options: Any) -> Any:
    """The data of figure ``kind`` (``rooflm.plot.data``), drawn alike by the static and interactive modules."""
    from rooflm.plot import data

    if kind == "roofline":
        return data.roofline_data(report or query.analyze(), query, options.get("trajectory", DEFAULT_TRAJECTORY))
    if kind == "batch":
        return data.batch_data(query, options.get("batches") or DEFAULT_BATCHES, options.get("quants"),
                               options.get("hardwares"))
    if kind == "breakdown":
        return data.breakdown_data(query, options.get("over", "batch"), options.get("values"))
    if kind == "memory":
        return data.memory_data(query, options.get("batches"))
    if kind == "serving":
        from rooflm.plot.serving_data import serving_data

        return serving_data(query, **options)
    if kind == "pareto":
        from rooflm.plot.pareto_data import pareto_data

        return pareto_data(query, **options)
    if kind == "levels":
        from rooflm.plot.levels_data import levels_data
        from rooflm.specs.hardware import load_hardware

        return levels_data(report or query.analyze(), load_hardware(query.hardware), options.get("all_levels", False))
    raise InvalidInputError(f"unknown figure kind {kind!r}; kinds: {', '.join(KINDS)}")


def roofline(report: Report | None = None, *, trajectory: Sequence[int] | None = DEFAULT_TRAJECTORY,
             **query: Unpack[QueryArgs]) -> Figure:
    """The device's roofs, the step's operators (area ∝ time) and the step's point as batch grows.

    Pass a Report, or the arguments of ``rooflm.analyze``. With a report of a model loaded from a
    config.json outside the catalog, pass ``model=`` (the ModelSpec or path) too."""
    q = Query.from_report(report, **query) if report is not None else Query.of(**query)
    return _mpl().roofline(figure_data("roofline", q, report, trajectory=trajectory))


def levels(report: Report | None = None, *, all_levels: bool = False, **query: Unpack[QueryArgs]) -> Figure:
    """The hierarchical roofline: a slope per memory level, each operator at its intensity for the level that binds
    it (``all_levels``: at every level, hollow where it does not bind). Pass a Report, or the arguments of
    ``rooflm.analyze``."""
    q = Query.from_report(report, **query) if report is not None else Query.of(**query)
    return _mpl().levels(figure_data("levels", q, report, all_levels=all_levels))


def batch(*, batch: Sequence[int] = DEFAULT_BATCHES, quant: str | Sequence[str] = "bf16",
          hardware: str | Sequence[str] = "h100-sxm", **query: Any) -> Figure:
    """Time per step and tokens/s against batch, the bound and the critical batch; one series per scheme
    and device (``quant=["bf16", "fp8"]`` or ``"bf16,fp8"``, likewise ``hardware``)."""
    quants = data_list(quant)
    hardwares = data_list(hardware)
    q = Query.of(quant=quants[0], hardware=hardwares[0], **query)
    return _mpl().batch(figure_data("batch", q, batches=batch, quants=quants, hardwares=hardwares))


def breakdown(*, over: Literal["batch", "context"] = "batch", values: Sequence[int] | None = None,
              **query: Unpack[QueryArgs]) -> Figure:
    """Step time stacked by operator class, against batch or context."""
    return _mpl().breakdown(figure_data("breakdown", Query.of(**query), over=over, values=values))


# Ignored (misc): the batches drawn stand in for the query's one batch; PEP 692 forbids the overlap, Python allows it.
def memory(*, batch: Sequence[int] | None = None, **query: Unpack[QueryArgs]) -> Figure:  # type: ignore[misc]
    """Weights + KV cache + activations against batch, the device's capacity and the largest batch."""
    return _mpl().memory(figure_data("memory", Query.of(**query), batches=batch))


def serving(*, concurrency: Sequence[int] | None = None, request_rate: Sequence[float] | None = None,
            method: str = "simulate", **query: Any) -> Figure:
    """Output tokens/s per GPU against per user, a point per load, and TTFT/TPOT against the load: one deployment
    under ``rooflm.serve_traffic`` (its keywords ``requests``, ``seed``, ``max_running``, … pass through;
    ``prompt_len`` and ``gen_len`` are the query's)."""
    traffic_keys = ("requests", "seed", "max_running", "max_tokens_per_step", "kv_blocks")
    traffic = {k: query.pop(k) for k in traffic_keys if k in query}
    return _mpl().serving(figure_data("serving", Query.of(**query), concurrency=concurrency,
                                      request_rate=request_rate, method=method, **traffic))


def pareto(result: PlanResult | None = None, **plan_args: Any) -> Figure:
    """The Pareto frontier of ``rooflm.plan``: every configuration searched (faint), the frontier of tokens/s per
    GPU against per user, the best within the targets and the TPOT target. Pass a PlanResult, or plan's arguments."""
    from rooflm.plot.pareto_data import from_result
    from rooflm.serving.plan import plan

    return _mpl().pareto(from_result(result if result is not None else plan(**plan_args)))


def data_list(value: str | Sequence[str]) -> list[str]:
    """``"bf16,fp8"`` or ``["bf16", "fp8"]`` → ``["bf16", "fp8"]``."""
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v) for v in value]
    items = [v for v in items if v]
    if not items:
        raise InvalidInputError("give at least one name")
    return items


def save(fig: Any, path: str | Path) -> Path:
    """Write a figure from this module: PNG/SVG/PDF for matplotlib figures, HTML for plotly ones."""
    suffix = Path(path).suffix.lower()
    if suffix == ".html":
        return _interactive().save(fig, path)
    return _mpl().save(fig, path)


def render(kind: str, path: str | Path, query: Query, **options: Any) -> Path:
    """Build figure ``kind`` for ``query`` and write it to ``path``; the suffix picks the format."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InvalidInputError(f"cannot tell the format of {str(path)!r}: end the file name with "
                                f"{', '.join(SUFFIXES)}")
    if kind not in KINDS:
        raise InvalidInputError(f"unknown figure kind {kind!r}; kinds: {', '.join(KINDS)}")
    # Refused before the figure is built: a file that cannot be written, or one of the figure's own input files.
    inputs = (query.model, query.hardware, *(options.get("hardwares") or ()),
              *(query.deployment.get(k) for k in ("profile", "draft")))
    check_output(path, str(path), inputs, field="output")
    backend = _interactive() if suffix == ".html" else _mpl()
    fig = getattr(backend, kind)(figure_data(kind, query, **options))
    return backend.save(fig, path)
