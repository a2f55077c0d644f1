"""Profiles: the fitted parameters of one or more devices in a TOML file, with the data's provenance and errors.

    [profile]
    format = 2
    rooflm = "0.1.0"
    created = "2025-01-01T00:00:00+00:00"
    data = "measurements.csv"
    data_sha256 = "…"
    rows = 32

    [devices."NVIDIA H100 SXM5 80GB".factors."bandwidth.dense"]
    value = 0.88
    catalog = 1.0
    stderr = 0.02
    fitted = true

    [devices."NVIDIA H100 SXM5 80GB".errors]
    fit_median_abs = 0.014
    …

Each factor multiplies a calibrated-mode figure (rooflm.core.roofline.Factors); ``comm_overlap`` is the fraction itself.
``load_profile(path)`` reads it back: ``deployment_overrides(hardware)`` gives calibrated mode (and a fitted overlap),
``factors_for(hardware)`` the factors. A profile of the first format (flat overrides) is still read as before.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rooflm.core.profile_params import FORMAT
from rooflm.core.profiles import Profile, load_profile
from rooflm.fit.solve import DeviceFit, Errors
from rooflm.specs.files import MAX_TABLE_BYTES, read_limited, write_atomic

__all__ = ["Profile", "load_profile", "profile_text", "write_profile"]


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(float(v)) if isinstance(v, float) else str(v)
    return json.dumps(str(v))  # a JSON string is a valid TOML basic string


def _table(header: str, values: dict[str, Any]) -> list[str]:
    return [f"[{header}]", *(f"{k} = {_toml_value(v)}" for k, v in values.items() if v is not None), ""]


def _errors(prefix: str, e: Errors | None) -> dict[str, float]:
    return {} if e is None else {f"{prefix}_median_abs": e.median_abs, f"{prefix}_max_abs": e.max_abs}


def profile_text(fits: list[DeviceFit], data: Path, version: str) -> str:
    """The profile's TOML text."""
    raw = read_limited(data, MAX_TABLE_BYTES, f"measurement table {data}", "a measurement table", field="data")
    lines = ["# rooflm profile, written by `rooflm fit`: factors on calibrated mode's curves fitted to measurements.", ""]
    lines += _table("profile", {"format": FORMAT, "rooflm": version, "created": datetime.now(UTC).isoformat(timespec="seconds"),
                                "data": data.name, "data_sha256": hashlib.sha256(raw).hexdigest(),
                                "rows": sum(f.points for f in fits)})
    for f in fits:
        device = f"devices.{json.dumps(f.hardware)}"
        for name, e in f.parameters.items():
            lines += _table(f"{device}.factors.{json.dumps(name)}",
                            {"value": e.value, "catalog": e.catalog, "stderr": e.stderr, "fitted": e.fitted})
        lines += _table(f"{device}.errors", {"points": f.points, **_errors("fit", f.fit_error),
                                             **_errors("cv", f.cv_error), **_errors("catalog", f.catalog_error),
                                             "configurations": f.configurations})
    return "\n".join(lines)


def write_profile(path: str | Path, fits: list[DeviceFit], data: str | Path, version: str,
                  inputs: tuple[str | Path, ...] = ()) -> None:
    """Write the profile whole, never over the table it was fitted on nor over ``inputs`` (the files the table names)."""
    write_atomic(path, profile_text(fits, Path(data), version), f"profile {path}", (data, *inputs), field="output")
