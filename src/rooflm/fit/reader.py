"""Reading a profile (the format is rooflm.fit.profile's). rooflm.deploy reads profiles through this module, so it
imports nothing that imports rooflm.deploy."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rooflm.errors import InvalidInputError
from rooflm.fit.params import BY_NAME, overrides
from rooflm.specs.hardware import HardwareSpec, load_hardware


@dataclass(frozen=True)
class Profile:
    path: Path
    devices: dict[str, dict[str, float]]  # device name → fitted parameter values by name
    provenance: dict[str, Any]

    def deployment_overrides(self, hardware: str | Path | HardwareSpec) -> dict[str, Any]:
        """The keyword arguments that make an entry point predict with this profile on ``hardware`` (a catalog
        name, alias or file, resolved as rooflm resolves it)."""
        name = load_hardware(hardware).name
        if name not in self.devices:
            raise InvalidInputError(f"profile {self.path.name} has no parameters for {name} "
                                    f"(it covers {', '.join(self.devices) or 'no device'})", field="profile")
        return {"efficiency": "calibrated", **overrides(self.devices[name])}


def load_profile(path: str | Path) -> Profile:
    """Read a profile written by `rooflm fit`; a malformed one is refused naming what is wrong."""
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInputError(f"cannot read profile {p}: {exc}", field="profile") from None
    devices = doc.get("devices")
    if not isinstance(devices, dict):
        raise InvalidInputError(f"profile {p.name} has no [devices] table", field="profile")
    return Profile(p, {hw: _fitted(p.name, hw, d) for hw, d in devices.items()}, dict(doc.get("profile", {})))


def _fitted(name: str, hw: str, device: Any) -> dict[str, float]:
    params = device.get("parameters", {}) if isinstance(device, dict) else None
    if not isinstance(params, dict):
        raise InvalidInputError(f"profile {name}: devices.{hw}.parameters is not a table", field="profile")
    values: dict[str, float] = {}
    for param, entry in params.items():
        if param not in BY_NAME:
            raise InvalidInputError(f"profile {name}: unknown parameter {param!r} for {hw}", field="profile")
        value = entry.get("value") if isinstance(entry, dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InvalidInputError(f"profile {name}: {hw} {param}.value must be a number", field="profile")
        p = BY_NAME[param]
        if not p.low <= value <= p.high:
            raise InvalidInputError(f"profile {name}: {hw} {param} = {value} is outside [{p.low}, {p.high}]",
                                    field="profile")
        if entry.get("fitted", True):
            values[param] = float(value)
    return values
