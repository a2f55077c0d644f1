"""The fit of factors on the calibrated curves: on data the catalog predicts it changes nothing, known factors are
recovered, cross-validation holds out whole configurations, and the factors reach the prediction through the core."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest

from rooflm import analyze
from rooflm.core.inputs import setup, with_factors
from rooflm.core.roofline import Factors
from rooflm.fit import solve
from rooflm.fit.solve import DeviceFit, Predictor, configuration, fit
from rooflm.fit.table import Point

NOISE = 0.03
# Known factors: the dense GEMMs sustain 80% of the catalog's bandwidth, and the engine's step costs 1.5× its figure.
TRUTH = {"bandwidth.dense": 0.8, "step": 1.5}


# A 4-layer model whose decode steps are mostly fixed costs (kernels and the engine's step): what separates the step
# factor from the bandwidth ones, as a small model's batch-1 decode does on a real engine.
TINY = {"model_type": "llama", "hidden_size": 256, "intermediate_size": 704, "num_hidden_layers": 4,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 4096, "max_position_embeddings": 4096}
_TINY_PATH = Path(tempfile.mkdtemp()) / "tiny-config.json"
_TINY_PATH.write_text(json.dumps(TINY))


def _grid() -> list[Point]:
    """Four configurations (three models, one of them also at tp 2), decode and prefill, batches 1-64, short and long
    contexts: 48 points."""
    pts = []
    for model, deployment in (("llama-3.1-8b", {}), ("qwen3-30b-a3b", {}), ("llama-3.1-8b", {"tp": 2}),
                              (str(_TINY_PATH), {})):
        for phase in ("decode", "prefill"):
            for batch in (1, 16, 64):
                for length in (256, 2048):
                    pts.append(Point(len(pts) + 2, model, "h100-sxm", phase, batch, length, length, 256, False,
                                     dict(deployment)))
    return pts


def _measured(points: list[Point], truth: dict[str, float], seed: int) -> list[Point]:
    """Synthetic measurements: rooflm with the ``truth`` factors times log-normal noise of 3% (fixed seed)."""
    rng = np.random.default_rng(seed)
    t = Predictor(points)(truth) * np.exp(rng.normal(0.0, NOISE, len(points)))
    return [dataclasses.replace(p, value=float(v), seconds=float(v)) for p, v in zip(points, t, strict=True)]


@pytest.fixture(scope="module")
def on_catalog() -> DeviceFit:
    (f,) = fit(_measured(_grid(), {}, seed=1))
    return f


@pytest.fixture(scope="module")
def on_known() -> DeviceFit:
    (f,) = fit(_measured(_grid(), TRUTH, seed=2), ("bandwidth", "step"))
    return f


def test_factors_scale_the_curves_in_the_core() -> None:
    """A bandwidth factor of 0.5 on the dense GEMMs doubles their memory time and nothing else: batch-1 decode of
    llama-3.1-8b is weight-read-bound, so the step grows by about the GEMMs' memory share (between 1.5× and 2×)."""
    s = setup("llama-3.1-8b", "h100-sxm", efficiency="calibrated")
    base = analyze("llama-3.1-8b", "h100-sxm", phase="decode", batch=1, context=1024, efficiency="calibrated")
    slow = Predictor([Point(2, "llama-3.1-8b", "h100-sxm", "decode", 1, 1024, 1024, 256, False, {})])
    ratio = slow({"bandwidth.dense": 0.5})[0] / base.totals.time_s
    assert 1.5 < ratio < 2.0
    assert with_factors(s, Factors()).eff.factors == Factors()


def test_a_fit_on_catalog_data_changes_nothing(on_catalog: DeviceFit) -> None:
    """Catalog data with 3% noise: every fitted factor within 2 stated standard errors of 1 (the 95% band), and the
    held-out error within 10% of the catalog's own."""
    fitted = {n: e for n, e in on_catalog.parameters.items() if e.fitted}
    assert fitted, "some factor must be fitted"
    for name, e in fitted.items():
        if name == "comm_overlap":
            continue
        assert e.stderr is not None, name
        assert abs(e.value - 1.0) <= 2 * e.stderr, (name, e)
    assert on_catalog.cv_error is not None
    assert on_catalog.cv_error.median_abs <= 1.1 * on_catalog.catalog_error.median_abs


def test_known_factors_recovered(on_known: DeviceFit) -> None:
    for name, truth in TRUTH.items():
        e = on_known.parameters[name]
        assert e.fitted and e.stderr is not None, name
        assert abs(e.value - truth) <= 2 * e.stderr, (name, e)
    # and the fitted factors beat the catalog on the configurations held out
    assert on_known.beats_catalog


def test_cross_validation_never_splits_a_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    points = _measured(_grid(), TRUTH, seed=3)
    groups = [configuration(p) for p in points]
    assert len(set(groups)) == 4
    masks: list[np.ndarray] = []
    real = solve._solve

    def spy(predict: Predictor, space: object, measured: np.ndarray, mask: np.ndarray, *rest: object) -> object:
        masks.append(mask.copy())
        return real(predict, space, measured, mask, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(solve, "_solve", spy)
    fit(points, ("step",))
    held_out = [m for m in masks if not m.all()]
    assert len(held_out) == 4  # one refit per configuration
    for mask in held_out:
        for g in set(groups):
            inside = {bool(mask[i]) for i, h in enumerate(groups) if h == g}
            assert len(inside) == 1, g  # a configuration is wholly in the training set or wholly held out


def test_one_configuration_has_no_cross_validation() -> None:
    points = [p for p in _measured(_grid(), {}, seed=4) if p.model == "qwen3-30b-a3b"]
    (f,) = fit(points, ("step",))
    assert f.configurations == 1 and f.cv_error is None and not f.beats_catalog
