"""Reading a profile (the format is rooflm.fit.profile's). rooflm.core.inputs reads profiles through this module, so it
imports nothing that imports rooflm.core.inputs."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rooflm.core.profile_params import BY_NAME, FORMAT, OVERLAP, check_factor_name, factor_bounds, overrides, to_factors
from rooflm.core.roofline import NO_FACTORS, Factors
from rooflm.errors import InvalidInputError
from rooflm.specs.files import MAX_SPEC_BYTES, read_text_limited
from rooflm.specs.hardware import HardwareSpec, load_hardware


@dataclass(frozen=True)
class Profile:
    path: Path
    devices: dict[str, dict[str, float]]  # device name → fitted parameter values by name
    provenance: dict[str, Any]
    echo_keys: bool = True  # messages may name its device keys (not for text a web client sent: it is not echoed)
    # Format 2: the fitted factors on the calibrated curves per device (``devices`` then holds them by name too).
    factor_format: bool = False

    def deployment_overrides(self, hardware: str | Path | HardwareSpec) -> dict[str, Any]:
        """The keyword arguments that make an entry point predict with this profile on ``hardware`` (a catalog
        name, alias or file, resolved as rooflm resolves it). In format 2 that is calibrated mode and the fitted
        overlap; the factors come from ``factors_for``."""
        values = self._device(hardware)
        if self.factor_format:
            return {"efficiency": "calibrated", **({OVERLAP: values[OVERLAP]} if OVERLAP in values else {})}
        return {"efficiency": "calibrated", **overrides(values)}

    def factors_for(self, hardware: str | Path | HardwareSpec) -> Factors:
        """The factors on the calibrated curves for ``hardware`` (none in a profile of the first format)."""
        return to_factors(self._device(hardware)) if self.factor_format else NO_FACTORS

    def _device(self, hardware: str | Path | HardwareSpec) -> dict[str, float]:
        name = load_hardware(hardware).name
        if name not in self.devices:
            raise InvalidInputError(f"profile {self.path.name} has no parameters for {name} "
                                    f"(it covers {self._covered()})", field="profile")
        return self.devices[name]

    def _covered(self) -> str:
        if not self.devices:
            return "no device"
        return ", ".join(self.devices) if self.echo_keys else f"{len(self.devices)} other device(s)"


def load_profile(path: str | Path) -> Profile:
    """Read a profile written by `rooflm fit`; a malformed one is refused naming what is wrong."""
    p = Path(path)
    text = read_text_limited(p, MAX_SPEC_BYTES, f"profile {p}", "a profile (TOML)", field="profile")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(f"cannot read profile {p}: {exc}", field="profile") from None
    return _profile(p, doc, repr)


def profile_from_text(text: str, where: str) -> Profile:
    """A profile from its TOML text (the web server's: it opens no file). ``where`` names the text in messages and is
    the profile's name; a message quotes none of the text (a key or a value the client sent is not echoed back)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's messages name a position (line, column), not the text found there
        raise InvalidInputError(f"{where}: not valid TOML ({exc})", field=where) from None
    return _profile(Path(where), doc, lambda _key: "an entry", echo_keys=False)


def _profile(p: Path, doc: dict[str, Any], show: Callable[[str], str], echo_keys: bool = True) -> Profile:
    devices = doc.get("devices")
    if not isinstance(devices, dict):
        raise InvalidInputError(f"profile {p.name} has no [devices] table", field="profile")
    provenance = doc.get("profile", {})
    provenance = dict(provenance) if isinstance(provenance, dict) else {}
    version = provenance.get("format", 1)
    if version == FORMAT:
        return Profile(p, {hw: _factors(p.name, hw, d, show) for hw, d in devices.items()}, provenance, echo_keys,
                       factor_format=True)
    if version != 1:
        raise InvalidInputError(f"profile {p.name}: format {show(str(version))} is not one this rooflm reads "
                                f"(1 or {FORMAT}); refit it with `rooflm fit`", field="profile")
    # The first format (flat overrides that replace the calibrated curves) is read as before.
    return Profile(p, {hw: _fitted(p.name, hw, d, show) for hw, d in devices.items()}, provenance, echo_keys)


def _factors(name: str, hw: str, device: Any, show: Callable[[str], str]) -> dict[str, float]:
    """The fitted factors of one device (format 2); those kept at 1 (not fitted) are left out."""
    table = device.get("factors", {}) if isinstance(device, dict) else None
    if not isinstance(table, dict):
        raise InvalidInputError(f"profile {name}: the factors of device {show(hw)} are not a table", field="profile")
    values: dict[str, float] = {}
    for factor, entry in table.items():
        if not check_factor_name(factor):
            raise InvalidInputError(f"profile {name}: unknown factor {show(factor)} for device {show(hw)} (known: step, "
                                    "comm_overlap, bandwidth.FAMILY, compute.FAMILY, fixed.FAMILY)", field="profile")
        value = entry.get("value") if isinstance(entry, dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InvalidInputError(f"profile {name}: {factor}.value of device {show(hw)} must be a finite number",
                                    field="profile")
        low, high = factor_bounds(factor)
        if not low <= value <= high:
            raise InvalidInputError(f"profile {name}: {factor} of device {show(hw)} is outside [{low}, {high}]",
                                    field="profile")
        if entry.get("fitted", True):
            values[factor] = float(value)
    return values


def _fitted(name: str, hw: str, device: Any, show: Callable[[str], str]) -> dict[str, float]:
    """The fitted values of one device; ``show`` is how a message names a key of the document (``repr`` for a file the
    user named, a neutral word for text a client sent)."""
    params = device.get("parameters", {}) if isinstance(device, dict) else None
    if not isinstance(params, dict):
        raise InvalidInputError(f"profile {name}: the parameters of device {show(hw)} are not a table", field="profile")
    values: dict[str, float] = {}
    for param, entry in params.items():
        if param not in BY_NAME:
            raise InvalidInputError(f"profile {name}: unknown parameter {show(param)} for device {show(hw)} (known: "
                                    f"{', '.join(BY_NAME)})", field="profile")
        value = entry.get("value") if isinstance(entry, dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InvalidInputError(f"profile {name}: {param}.value of device {show(hw)} must be a finite number",
                                    field="profile")
        if not entry.get("fitted", True):
            continue  # the catalog value, written for the record (it may be 0, below a log-fitted bound): not used
        p = BY_NAME[param]
        if not p.low <= value <= p.high:
            raise InvalidInputError(f"profile {name}: {param} of device {show(hw)} is outside [{p.low}, {p.high}]",
                                    field="profile")
        values[param] = float(value)
    return values
