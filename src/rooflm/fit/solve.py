"""Fit multiplicative factors on calibrated mode's curves to measured points: bounded, regularised least squares on
log time (scipy).

The parameters (rooflm.core.profile_params) are factors on the catalog's figures, not figures that replace them: per
kernel family (data/kernels.toml, plus ``other`` for the operators priced on the flat fractions, and ``all``, which
multiplies every family's: what a family that no point ran on takes from the others) a bandwidth, a compute and a
fixed-cost-per-kernel factor; a factor on the engine's per-step time; and the communication overlap. A factor of
1 is the catalog, so the curves keep their shape (a kernel's efficiency still grows with M and with its weight bytes)
and a fit on data the catalog already predicts leaves them at 1. Each factor is fitted as log(factor) in
[log 0.25, log 4]; the overlap as it is, in [0, 0.99].

The prior: each fitted z (log factor, or the overlap) adds the residual PRIOR_WEIGHT · (z − z_catalog) to the
least squares, beside the points' log(predicted / measured). So a factor of 2 (z = 0.69) costs as much as one point
mispredicted by exp(0.3 · 0.69) − 1 = 23%: a handful of points moves a factor only when they agree. Weaker priors
(0.05, 0.2) let the factors of a fit on catalog data with 3% noise follow the noise: held out, they predicted the
left-out configurations up to 10% worse than the catalog. The factors
no point is sensitive to are not fitted (they stay 1).

The standard error is the linearised one of the regularised problem, s·sqrt((JᵀJ + w²I)⁻¹) with s² = Σr²/(n − k)
over the points' residuals: the prior narrows the error of a factor the data barely sees. A factor that ends at a
bound has no such error (reported without one; the others' errors are those with it held).

Validation is by configuration: the points of one (model, device, layout, scheme) are left out together, the factors
refitted on the others and the left-out points predicted; the median of those errors is set against the catalog's
on the same points (rooflm.fit's "cv_error" and "catalog_error").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from rooflm.analyses.analyze import run_phase
from rooflm.core.inputs import Setup, setup, with_factors
from rooflm.core.profile_params import BY_NAME, OVERLAP, PER_FAMILY, STEP, factor_bounds, factor_name, overrides, to_factors
from rooflm.core.roofline import ALL, OTHER
from rooflm.fit.table import Point
from rooflm.kinds import Progress
from rooflm.specs.kernels import base_family

# A factor is fitted when changing log(factor) by one moves some point's predicted log time by at least this much:
# below it the data holds no information on it.
MIN_SENSITIVITY = 0.01
# The weight of the prior toward the catalog (see the module's text), in log-time units per unit of z.
PRIOR_WEIGHT = 0.3
# Two fitted factors whose estimates correlate more than this are reported as confounded.
CONFOUNDED = 0.95
_STEP = 1e-4  # finite-difference step in z, for the sensitivity screen


@dataclass(frozen=True)
class Estimate:
    value: float
    catalog: float
    stderr: float | None  # None: not fitted (the value is the catalog's), or ended on a bound
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
    cv_error: Errors | None  # None with a single configuration (nothing to hold out)
    catalog_error: Errors  # the catalog's error on the same points
    points: int
    configurations: int = 1
    unidentified: list[str] = field(default_factory=list)  # kept at 1: no point is sensitive to them
    confounded: list[tuple[str, str, float]] = field(default_factory=list)
    at_bound: list[tuple[str, float]] = field(default_factory=list)  # fitted parameters that ended at a bound

    def fitted_values(self) -> dict[str, float]:
        return {n: e.value for n, e in self.parameters.items() if e.fitted}

    @property
    def beats_catalog(self) -> bool:
        """Whether the fitted factors predict the held-out configurations better than the catalog (median)."""
        return self.cv_error is not None and self.cv_error.median_abs < self.catalog_error.median_abs


class Predictor:
    """Predicted seconds for a fixed list of points under fitted values: one vectorised evaluation per group of
    points that differ only in batch, prompt length and context. Values are factors by name (format 2) or, for a
    profile of the first format, its flat overrides by name (then each call resolves its setups anew)."""

    def __init__(self, points: list[Point]) -> None:
        self.points = points
        groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for i, p in enumerate(points):
            groups[p.group].append(i)
        self.groups = [(points[ix[0]], np.array(ix)) for ix in groups.values()]
        self._setups: dict[int, Setup] = {}

    def setup_of(self, g: int, flat: dict[str, float] | None = None) -> Setup:
        first = self.groups[g][0]
        if flat:
            return setup(first.model, first.device, efficiency="calibrated", **{**first.deployment, **flat})
        if g not in self._setups:
            self._setups[g] = setup(first.model, first.device, efficiency="calibrated", **first.deployment)
        return self._setups[g]

    def families(self) -> list[str]:
        """``all`` (every family at once), the kernel families (base names) the points' devices have curves for, and
        ``other``."""
        names = {base_family(k) for g in range(len(self.groups)) for k in self.setup_of(g).eff.kernels}
        return [ALL, *sorted(names), OTHER]

    def catalog_overlap(self) -> float:
        return self.setup_of(0).eff.comm_overlap

    def __call__(self, values: dict[str, float], mask: np.ndarray | None = None) -> np.ndarray:
        """Every point's predicted seconds; with ``mask``, only the groups holding a masked point (others NaN)."""
        out = np.full(len(self.points), np.nan)
        flat = overrides({n: v for n, v in values.items() if n in BY_NAME and n != OVERLAP})
        factors = to_factors({n: v for n, v in values.items() if n not in BY_NAME or n == OVERLAP})
        for g, (first, ix) in enumerate(self.groups):
            if mask is not None and not mask[ix].any():
                continue
            s = self.setup_of(g, flat)
            if OVERLAP in values:
                s = replace(s, eff=replace(s.eff, comm_overlap=values[OVERLAP]),
                            decode_eff=replace(s.decode_efficiency, comm_overlap=values[OVERLAP]))
            s = with_factors(s, factors)
            pts = [self.points[i] for i in ix]
            r = run_phase(s, first.phase, np.array([p.batch for p in pts], float),
                          np.array([p.prompt_len for p in pts], float), np.array([p.context for p in pts], float),
                          first.gen_len, first.lm_head_all_tokens, with_memory=False)
            by = {"ttft_s": r.ttft_s, "tpot_s": r.tpot_s}
            for j, p in enumerate(pts):
                column = by.get(p.quantity) if first.phase == "e2e" else None
                out[ix[j]] = float(np.broadcast_to(r.step.time_s if column is None else column, (len(pts),))[j])
        return out


@dataclass(frozen=True)
class _Space:
    """The fitted parameters' names, catalog point z0 and bounds in z (log factor, or the overlap itself)."""

    names: list[str]
    z0: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    def values(self, z: np.ndarray) -> dict[str, float]:
        return {n: float(v) if n == OVERLAP else float(np.exp(v)) for n, v in zip(self.names, z, strict=True)}

    def subset(self, keep: list[int]) -> _Space:
        return _Space([self.names[k] for k in keep], self.z0[keep], self.lo[keep], self.hi[keep])


def _space(names: list[str], overlap: float) -> _Space:
    z0 = np.array([overlap if n == OVERLAP else 0.0 for n in names])
    bounds = [factor_bounds(n) for n in names]
    lo = np.array([b[0] if n == OVERLAP else np.log(b[0]) for n, b in zip(names, bounds, strict=True)])
    hi = np.array([b[1] if n == OVERLAP else np.log(b[1]) for n, b in zip(names, bounds, strict=True)])
    return _Space(names, z0, lo, hi)


def candidate_names(families: list[str]) -> list[str]:
    return [*(factor_name(w, f) for f in families for w in PER_FAMILY), STEP, OVERLAP]


def configuration(p: Point) -> tuple[Any, ...]:
    """The configuration a point belongs to: model, device, layout and scheme (what cross-validation holds out)."""
    d = p.deployment
    return (p.model, p.hardware, d.get("tp", 1), d.get("ep", 1), d.get("pp", 1), d.get("dp", 1),
            str(d.get("quant") or "native"), str(d.get("kv_dtype") or ""))


def fit(points: list[Point], names: tuple[str, ...] | None = None,
        progress: Progress | None = None) -> list[DeviceFit]:
    """Fit each device's points on their own (a profile holds one set of factors per device); ``progress(done,
    total)`` is called as devices are fitted."""
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
    predict = Predictor(points)
    measured = np.array([p.seconds for p in points])
    candidates = candidate_names(predict.families())
    chosen = [n for n in candidates if names is None or n in names or n.partition(".")[0] in names]
    full = _space(chosen, predict.catalog_overlap())
    at_catalog = predict({})
    catalog_error = Errors.of(at_catalog, measured)
    sens = _jacobian(lambda z: np.log(predict(full.values(z))), full.z0)
    strength = np.max(np.abs(sens), axis=0) if len(chosen) else np.zeros(0)
    active = [j for j in range(len(chosen)) if strength[j] >= MIN_SENSITIVITY]
    unidentified = [n for j, n in enumerate(chosen) if j not in active]
    space = full.subset(active)
    estimates = {n: Estimate(float(np.exp(z)) if n != OVERLAP else float(z), float(np.exp(z)) if n != OVERLAP
                             else float(z), None, False) for n, z in zip(full.names, full.z0, strict=True)}
    groups = [configuration(p) for p in points]
    if not space.names:
        return DeviceFit(hardware, estimates, catalog_error, None, catalog_error, len(points), len(set(groups)),
                         unidentified)
    everyone = np.ones(len(points), bool)
    z, jac = _solve(predict, space, measured, everyone)
    values = space.values(z)
    residual = np.log(predict(values) / measured)
    pinned = [k for k in range(len(z)) if min(z[k] - space.lo[k], space.hi[k] - z[k]) <= 1e-6 * (space.hi[k] - space.lo[k])]
    free = [k for k in range(len(z)) if k not in pinned]
    stderr, corr = _uncertainty(jac[:, free], residual, len(free))
    for n in space.names:
        estimates[n] = Estimate(values[n], estimates[n].catalog, None, True)
    for i, k in enumerate(free):
        n = space.names[k]
        scale = 1.0 if n == OVERLAP else values[n]  # delta method: d factor = factor · d log(factor)
        estimates[n] = Estimate(values[n], estimates[n].catalog, float(stderr[i] * scale), True)
    # A factor on all families overlaps each family's by design (the prior splits what they share): not reported.
    confounded = [(space.names[free[a]], space.names[free[b]], float(corr[a, b])) for a in range(len(free))
                  for b in range(a + 1, len(free)) if abs(corr[a, b]) > CONFOUNDED
                  and not {space.names[free[a]], space.names[free[b]]} & {factor_name(w, ALL) for w in PER_FAMILY}]
    return DeviceFit(hardware, estimates, Errors.of(predict(values), measured),
                     _by_configuration(predict, space, measured, groups, z), catalog_error, len(points),
                     len(set(groups)), unidentified, confounded,
                     [(space.names[k], values[space.names[k]]) for k in pinned])


def _residuals(predict: Predictor, space: _Space, measured: np.ndarray, mask: np.ndarray) -> Callable[..., np.ndarray]:
    def residual(z: np.ndarray) -> np.ndarray:
        data = np.log(predict(space.values(z), mask)[mask] / measured[mask])
        return np.concatenate([data, PRIOR_WEIGHT * (z - space.z0)])

    return residual


def _solve(predict: Predictor, space: _Space, measured: np.ndarray, mask: np.ndarray,
           start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Bounded least squares of the masked points' log(predicted / measured) and the prior, from ``start`` (the
    catalog point by default); (z, the points' Jacobian rows) at the solution. The tolerances are a millionth of
    log time: far below any measurement's noise."""
    z0 = np.clip(space.z0 if start is None else start, space.lo + 1e-12, space.hi - 1e-12)
    res = least_squares(_residuals(predict, space, measured, mask), z0, bounds=(space.lo, space.hi), method="trf",
                        x_scale=1.0, diff_step=1e-6, xtol=1e-6, ftol=1e-6)
    return res.x, res.jac[: int(mask.sum())]


def _jacobian(f: Callable[[np.ndarray], np.ndarray], z: np.ndarray) -> np.ndarray:
    """Forward differences of f at z, one column per parameter."""
    base = f(z)
    cols = [np.zeros_like(base)]
    for j in range(len(z)):
        dz = np.zeros_like(z)
        dz[j] = _STEP
        cols.append((f(z + dz) - base) / _STEP)
    return np.stack(cols[1:], axis=1) if len(z) else np.zeros((len(base), 0))


def _uncertainty(jac: np.ndarray, residual: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Standard errors and correlations: cov = s²·(JᵀJ + w²I)⁻¹ with s² = Σr² / (n − k) (w: the prior's weight)."""
    n = len(residual)
    s2 = float(residual @ residual) / max(n - k, 1)
    cov = s2 * np.linalg.inv(jac.T @ jac + PRIOR_WEIGHT**2 * np.eye(jac.shape[1]))
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = cov / np.outer(sd, sd)
    return sd, np.where(np.isfinite(corr), corr, 0.0)


def _by_configuration(predict: Predictor, space: _Space, measured: np.ndarray, groups: list[tuple[Any, ...]],
                      start: np.ndarray) -> Errors | None:
    """Each configuration's points predicted by factors refitted without them on the other configurations' points;
    None with a single configuration. Each refit starts from the full fit (it converges in a few steps; the
    regularised problem has one minimum, so where it starts does not decide where it ends)."""
    keys = sorted(set(groups), key=str)
    if len(keys) < 2:
        return None
    predicted = np.empty(len(measured))
    labels = np.array([keys.index(g) for g in groups])
    for k in range(len(keys)):
        held = labels == k
        z, _ = _solve(predict, space, measured, ~held, start)
        predicted[held] = predict(space.values(z), held)[held]
    return Errors.of(predicted, measured)
