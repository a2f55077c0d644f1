"""`rooflm fit`: calibrate rooflm's calibrated mode to your own engine from a table of measurements.

``read_table`` reads and checks the table, ``fit`` estimates the parameters per device, ``write_profile`` and
``load_profile`` keep them in a TOML profile whose ``deployment_overrides(hardware)`` are keyword arguments for
``rooflm.analyze`` (and every other entry point).
"""

from importlib import import_module
from typing import Any

# Names → the module defining them, imported at first use: solve (and profile, which writes its results) pull in
# scipy (~0.5 s), which a command that only reads a profile or prints help should not pay.
# A profile and its parameters live in the core (every entry point reads one); fit estimates and writes them.
_PROFILES = "rooflm.core.profiles"
_PARAMS = "rooflm.core.profile_params"
_WHERE = {"PARAMETERS": _PARAMS, "Parameter": _PARAMS, "Profile": _PROFILES, "load_profile": _PROFILES,
          "write_profile": "profile", "DeviceFit": "solve", "Errors": "solve", "Estimate": "solve", "fit": "solve",
          "Point": "table", "read_table": "table"}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'rooflm.fit' has no attribute {name!r}")
    module = _WHERE[name]
    return getattr(import_module(module if module.startswith("rooflm.") else f"rooflm.fit.{module}"), name)
