"""`rooflm fit`: calibrate rooflm's calibrated mode to your own engine from a table of measurements.

``read_table`` reads and checks the table, ``fit`` estimates the parameters per device, ``write_profile`` and
``load_profile`` keep them in a TOML profile whose ``deployment_overrides(hardware)`` are keyword arguments for
``rooflm.analyze`` (and every other entry point).
"""

from rooflm.fit.params import PARAMETERS, Parameter
from rooflm.fit.profile import Profile, load_profile, write_profile
from rooflm.fit.solve import DeviceFit, Errors, Estimate, fit
from rooflm.fit.table import Point, read_table

__all__ = ["PARAMETERS", "DeviceFit", "Errors", "Estimate", "Parameter", "Point", "Profile", "fit", "load_profile",
           "read_table", "write_profile"]
