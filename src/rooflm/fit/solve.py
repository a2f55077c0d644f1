"""Fit calibrated mode's parameters to measured points: bounded least squares on log time (scipy).

Per device: the parameters no point is sensitive to keep their catalog value; the rest are fitted from their
catalog values; the Jacobian at the solution gives each one's standard error and their correlations (two that
the data cannot tell apart are named); every point is then left out in turn and predicted from a fit to the others.

The standard error is the usual linearised one, s·sqrt((JᵀJ)⁻¹) with s² = Σr²/(n − k) on log time: checked over
repeated synthetic draws (tests/fit/test_solve.py), the truth lies outside ±1 stderr in about a third of them,
as it should with n − k degrees of freedom (a Student t: 32.5% at 29, 35% at 13, against 31.7% for a normal).
A parameter that ends at one of its bounds has no such error (the data wants a value rooflm does not allow; the
curvature there says nothing of it): it is reported without one, and the others' errors are those with it held.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from rooflm.analyses.analyze import run_phase
from rooflm.core.inputs import setup
from rooflm.core.profile_params import BY_NAME, PARAMETERS, Parameter, overrides
from rooflm.errors import InvalidInputError
from rooflm.fit.table import Point
from rooflm.kinds import Progress

# A parameter is fitted when changing it by one unit of its fitted scale (a factor e for a log one) moves some
# point's predicted time by at least this much (in log time): below it the data holds no information on it.
MIN_SENSITIVITY = 0.01
# Two fitted parameters whose estimates correlate more than this are reported as confounded.
CONFOUNDED = 0.95
_STEP = 1e-4  # finite-difference step in fitted units, for the sensitivity screen


@dataclass(frozen=True)
class Estimate:
    value: float
    catalog: float
    stderr: float | None  # None: not fitted (the value is the catalog's)
    fitted: bool


@dataclass(frozen=True)
class Errors:
    """|predicted / measured − 1| over the points."""

    median_abs: float
    max_abs: float

    @classmethod
    def of(cls, predicted: np.ndarray, measured: np.ndarray) -> Errors:
        e = np.abs(predicted / measured - 1.0)
        return cls(float(np.median(e)), float(np.max(e)))


@dataclass(frozen=True)
class DeviceFit:
    hardware: str
    parameters: dict[str, Estimate]
    fit_error: Errors
    cv_error: Errors | None  # None with too few points to leave one out
    catalog_error: Errors  # the default calibration's error on the same points
    points: int
    unidentified: list[str] = field(default_factory=list)  # kept at the catalog value: no point is sensitive
    confounded: list[tuple[str, str, float]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # sensitive, but too few points to fit them all
    at_bound: list[tuple[str, float]] = field(default_factory=list)  # fitted parameters that ended at a bound
    # Kernels per step of each model, when kernel_overhead and step_overhead are confounded (for the advice).
    kernels_per_step: dict[str, float] = field(default_factory=dict)

    def fitted_values(self) -> dict[str, float]:
        return {n: e.value for n, e in self.parameters.items() if e.fitted}


class Predictor:
    """Predicted seconds for a fixed list of points under parameter overrides: one vectorised evaluation per
    group of points that differ only in batch, prompt length and context."""

    def __init__(self, points: list[Point]) -> None:
        self.points = points
        groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for i, p in enumerate(points):
            groups[p.group].append(i)
        self.groups = [(points[ix[0]], np.array(ix)) for ix in groups.values()]

    def __call__(self, values: dict[str, float], only: int | None = None) -> np.ndarray:
        """Every point's predicted seconds; with ``only``, just that point's group is evaluated (others are NaN)."""
        out = np.full(len(self.points), np.nan)
        kw = overrides(values)
        for first, ix in self.groups:
            if only is not None and only not in ix:
                continue
            pts = [self.points[i] for i in ix]
            s = setup(first.model, first.device, efficiency="calibrated", **{**first.deployment, **kw})  # type: ignore[arg-type]
            r = run_phase(s, first.phase, np.array([p.batch for p in pts], float),
                          np.array([p.prompt_len for p in pts], float), np.array([p.context for p in pts], float),
                          first.gen_len, first.lm_head_all_tokens, with_memory=False)
            by = {"ttft_s": r.ttft_s, "tpot_s": r.tpot_s}
            for j, p in enumerate(pts):
                column = by.get(p.quantity) if first.phase == "e2e" else None
                out[ix[j]] = float(np.broadcast_to(r.step.time_s if column is None else column, (len(pts),))[j])
        return out


def catalog_values(point: Point) -> dict[str, float]:
    """Each parameter's value in calibrated mode without overrides, for this point's device and scheme."""
    s = setup(point.model, point.device, efficiency="calibrated", **point.deployment)  # type: ignore[arg-type]
    return {p.name: float(p.catalog(s)) for p in PARAMETERS}


def fit(points: list[Point], names: tuple[str, ...] | None = None,
        progress: Progress | None = None) -> list[DeviceFit]:
    """Fit each device's points on their own (a profile holds one set of parameters per device);
    ``progress(done, total)`` is called as devices are fitted."""
    by_device: dict[str, list[Point]] = defaultdict(list)
    for p in points:
        by_device[p.hardware].append(p)
    report = progress or (lambda done, total: None)
    fits: list[DeviceFit] = []
    for hw, pts in by_device.items():
        report(len(fits), len(by_device))
        fits.append(fit_device(hw, pts, names))
    report(len(fits), len(by_device))
    return fits


def fit_device(hardware: str, points: list[Point], names: tuple[str, ...] | None = None) -> DeviceFit:
    params = [BY_NAME[n] for n in names] if names else list(PARAMETERS)
    predict = Predictor(points)
    measured = np.array([p.seconds for p in points])
    catalog = catalog_values(points[0])
    at_catalog = predict({})
    catalog_error = Errors.of(at_catalog, measured)
    # The screen is at the catalog point: an overhead of 0 there starts at a share of the shortest predicted step.
    z0 = np.array([p.to_internal(p.start(catalog[p.name], float(at_catalog.min()))) for p in params])
    sens = _jacobian(lambda z: np.log(predict(_values(params, z))), z0)
    strength = np.max(np.abs(sens), axis=0)
    active = [j for j in range(len(params)) if strength[j] >= MIN_SENSITIVITY]
    unidentified = [params[j].name for j in range(len(params)) if j not in active]
    # Fewer points than parameters leave nothing to estimate an error from: keep the most sensitive ones.
    active.sort(key=lambda j: -strength[j])
    dropped = [params[j].name for j in active[max(len(points) - 1, 0):]]
    active = sorted(active[: max(len(points) - 1, 0)])
    fitted = [params[j] for j in active]
    if not fitted:
        return _unfitted(hardware, points, catalog, catalog_error, unidentified, dropped)
    z, jac, residual = _solve(predict, fitted, z0[active], measured)
    values = _values(fitted, z)
    pinned = _at_bound(fitted, z)
    free = [k for k in range(len(fitted)) if k not in pinned]
    # A pinned parameter is held where it ended: the others' errors and correlations are those of the free ones.
    stderr, corr = _uncertainty(jac[:, free], residual, len(free))
    estimates = {p.name: Estimate(catalog[p.name], catalog[p.name], None, False) for p in params}
    for p in fitted:
        estimates[p.name] = Estimate(values[p.name], catalog[p.name], None, True)
    for i, k in enumerate(free):
        p = fitted[k]
        scale = values[p.name] if p.log else 1.0  # delta method: d value = value · d log(value)
        estimates[p.name] = Estimate(values[p.name], catalog[p.name], float(stderr[i] * scale), True)
    confounded = [(fitted[free[a]].name, fitted[free[b]].name, float(corr[a, b])) for a in range(len(free))
                  for b in range(a + 1, len(free)) if abs(corr[a, b]) > CONFOUNDED]
    overheads = {"kernel_overhead", "step_overhead"}
    kernels = _kernels_per_step(predict, values) if any({a, b} == overheads for a, b, _ in confounded) else {}
    return DeviceFit(hardware, estimates, Errors.of(predict(values), measured),
                     _leave_one_out(predict, fitted, z, jac, residual, measured, free), catalog_error, len(points),
                     unidentified,
                     confounded, dropped, [(fitted[k].name, values[fitted[k].name]) for k in pinned], kernels)


def _at_bound(params: list[Parameter], z: np.ndarray) -> list[int]:
    """The parameters the bounded fit left on a bound (within a millionth of their fitted range)."""
    out = []
    for k, p in enumerate(params):
        lo, hi = p.internal_bounds
        if min(z[k] - lo, hi - z[k]) <= 1e-6 * (hi - lo):
            out.append(k)
    return out


def _kernels_per_step(predict: Predictor, values: dict[str, float]) -> dict[str, float]:
    """Each model's kernels per step: how much its predicted time grows per second of per-kernel overhead."""
    base = {**values, "kernel_overhead": 1e-6}
    slope = (predict({**base, "kernel_overhead": 2e-6}) - predict(base)) / 1e-6
    by_model: dict[str, list[float]] = defaultdict(list)
    for p, k in zip(predict.points, slope, strict=True):
        by_model[p.model].append(float(k) / (p.gen_len if p.phase == "e2e" else 1))
    return {m: float(np.median(k)) for m, k in by_model.items()}


def _unfitted(hardware: str, points: list[Point], catalog: dict[str, float], catalog_error: Errors,
              unidentified: list[str], dropped: list[str]) -> DeviceFit:
    if not unidentified and dropped:
        raise InvalidInputError(f"{hardware}: one point cannot fit a parameter and estimate its error; "
                                "give at least two", field="data")
    estimates = {n: Estimate(v, v, None, False) for n, v in catalog.items() if n in BY_NAME}
    return DeviceFit(hardware, estimates, catalog_error, None, catalog_error, len(points), unidentified, [], dropped)


def _values(params: list[Parameter], z: np.ndarray) -> dict[str, float]:
    return {p.name: p.from_internal(float(v)) for p, v in zip(params, z, strict=True)}


def _jacobian(f: Callable[[np.ndarray], np.ndarray], z: np.ndarray) -> np.ndarray:
    """Forward differences of f at z, one column per parameter."""
    base = f(z)
    cols = []
    for j in range(len(z)):
        dz = np.zeros_like(z)
        dz[j] = _STEP
        cols.append((f(z + dz) - base) / _STEP)
    return np.stack(cols, axis=1)


def _solve(predict: Predictor, params: list[Parameter], z0: np.ndarray,
           measured: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bounded least squares of log(predicted / measured); (z, Jacobian, residuals) at the solution."""
    lo, hi = (np.array(b) for b in zip(*(p.internal_bounds for p in params), strict=True))
    z0 = np.clip(z0, lo + 1e-12, hi - 1e-12)

    def residual(z: np.ndarray) -> np.ndarray:
        return np.log(predict(_values(params, z)) / measured)

    res = least_squares(residual, z0, bounds=(lo, hi), method="trf", x_scale=1.0, diff_step=1e-6,
                        xtol=1e-8, ftol=1e-8)
    return res.x, res.jac, res.fun


def _uncertainty(jac: np.ndarray, residual: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Standard errors and correlations from the Jacobian: cov = s²·(JᵀJ)⁺ with s² = Σr² / (n − k)."""
    n = len(residual)
    s2 = float(residual @ residual) / max(n - k, 1)
    cov = s2 * np.linalg.pinv(jac.T @ jac)
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = cov / np.outer(sd, sd)
    # A parameter the fit cannot move at all (zero column) has no error and no correlation to report.
    corr = np.where(np.isfinite(corr), corr, 0.0)
    # Perfectly confounded columns make JᵀJ singular: pinv then splits the error between them, which hides it.
    # Their columns are parallel, so compare the columns themselves too.
    norms = np.linalg.norm(jac, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = (jac.T @ jac) / np.outer(norms, norms)
    cos = np.where(np.isfinite(cos), cos, 0.0)
    corr = np.where(np.abs(cos) > np.abs(corr), -np.sign(cos) * np.abs(cos), corr)
    return sd, corr


def _leave_one_out(predict: Predictor, params: list[Parameter], z: np.ndarray, jac: np.ndarray,
                   residual: np.ndarray, measured: np.ndarray, free: list[int]) -> Errors | None:
    """Each point predicted by the model at parameters fitted to all the others. Refitting from scratch n times
    costs n full fits (tens of seconds for 100 points); instead each refit is one Gauss-Newton step from the full
    fit on the other points' residuals and Jacobian (exact for a model linear in its parameters, and the fit
    starts next to the answer), clipped to the bounds; the held-out point is then predicted by rooflm itself."""
    n, k = jac.shape
    if n <= k + 1:
        return None
    lo, hi = (np.array(b) for b in zip(*(p.internal_bounds for p in params), strict=True))
    predicted = np.empty(n)
    for i in range(n):
        keep = np.arange(n) != i
        # A parameter on its bound stays there (its one-sided slope would send a linear step anywhere).
        step = np.zeros_like(z)
        step[free], *_ = np.linalg.lstsq(jac[keep][:, free], -residual[keep], rcond=None)
        zi = np.clip(z + step, lo, hi)
        predicted[i] = predict(_values(params, zi), only=i)[i]
    return Errors.of(predicted, measured)
