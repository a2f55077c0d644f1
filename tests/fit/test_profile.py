"""Profiles: written by fit, read back, and turned into keyword overrides that rooflm.analyze predicts with."""

from __future__ import annotations

from pathlib import Path

import pytest

from rooflm import analyze
from rooflm.errors import InvalidInputError
from rooflm.fit import fit, load_profile, read_table, write_profile
from rooflm.fit.solve import DeviceFit

EXAMPLE = Path(__file__).parents[2] / "examples" / "measurements.csv"
NAMES = ("bandwidth", "compute", "step")


# The example table's fit, made once for the module (~1 s; conftest.WORKER_UNITS keeps its readers on one worker).
@pytest.fixture(scope="module")
def fits() -> list[DeviceFit]:
    return fit(read_table(EXAMPLE), NAMES)


def test_round_trip_predicts_with_the_fitted_values(fits: list[DeviceFit], tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    write_profile(path, fits, EXAMPLE, "test")
    profile = load_profile(path)
    assert profile.provenance["rows"] == 28 and len(profile.provenance["data_sha256"]) == 64
    assert profile.provenance["format"] == 2
    assert profile.deployment_overrides("h100") == {"efficiency": "calibrated"}  # an alias names the same device
    fitted = fits[0].fitted_values()
    factors = profile.factors_for("h100")
    assert factors.bandwidth["dense"] == fitted["bandwidth.dense"] and factors.step == fitted["step"]
    # The example's first row (llama-3.1-8b decode, batch 1, context 1024): the profile predicts it better.
    row = read_table(EXAMPLE)[0]
    predicted = analyze(row.model, "h100-sxm", phase="decode", batch=row.batch, context=row.context, profile=path)
    default = analyze(row.model, "h100-sxm", phase="decode", batch=row.batch, context=row.context,
                      efficiency="calibrated")
    assert abs(predicted.totals.time_s / row.seconds - 1) < abs(default.totals.time_s / row.seconds - 1)


def test_an_unknown_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[profile]\nformat = 3\n[devices."h100-sxm".factors.step]\nvalue = 1.0\n')
    with pytest.raises(InvalidInputError, match=r"format '3' .* refit it with `rooflm fit`"):
        load_profile(path)


def test_a_factor_outside_its_bounds_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[profile]\nformat = 2\n[devices."h100-sxm".factors."bandwidth.dense"]\nvalue = 9.0\n')
    with pytest.raises(InvalidInputError, match=r"bandwidth.dense of device 'h100-sxm' is outside \[0.25, 4.0\]"):
        load_profile(path)


def test_other_device_refused(fits: list[DeviceFit], tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    write_profile(path, fits, EXAMPLE, "test")
    with pytest.raises(InvalidInputError, match="no parameters for a100") as exc:
        load_profile(path).deployment_overrides("a100-sxm-80gb")
    assert exc.value.field == "profile"


@pytest.mark.parametrize("text", ["not toml [", "[profile]\n", '[devices."h100-sxm".parameters.eta_memory]\nvalue = 7\n',
                                  '[devices."h100-sxm".parameters.warp_speed]\nvalue = 1\n'])
def test_malformed_profile_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(InvalidInputError):
        load_profile(path)


def test_catalog_zero_and_bound_values_round_trip(tmp_path: Path) -> None:
    """A profile is read back whatever the fit wrote: a parameter kept at a catalog value of 0 (a CPU file's step
    overhead; below the log fit's 1 ns bound) is not checked against the fitted range, and a value pinned at a
    bound is exactly on it (exp(log(1e-9)) is 1e-9 minus an ulp: before, the reader refused both)."""
    from rooflm.core.profile_params import PARAMETERS

    for p in PARAMETERS:
        assert p.low <= p.from_internal(p.internal_bounds[0]) and p.from_internal(p.internal_bounds[1]) <= p.high
    path = tmp_path / "p.toml"
    path.write_text('[devices."h100-sxm".parameters.step_overhead]\nvalue = 0.0\ncatalog = 0.0\nfitted = false\n\n'
                    '[devices."h100-sxm".parameters.kernel_overhead]\nvalue = 1e-9\ncatalog = 4e-6\nfitted = true\n')
    assert load_profile(path).deployment_overrides("h100-sxm") == {"efficiency": "calibrated", "kernel_overhead_s": 1e-9}
