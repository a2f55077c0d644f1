"""The hardware schema refuses non-finite and physically absurd figures, naming the key."""

from __future__ import annotations

import copy
import math
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import rooflm
from rooflm.specs.hardware import HARDWARE_DIR, HardwareSpec, hardware_names


def _h100() -> dict[str, Any]:
    with (HARDWARE_DIR / "h100-sxm.toml").open("rb") as fh:
        return tomllib.load(fh)


def _with(path: tuple[str, ...], value: object) -> dict[str, Any]:
    """The H100 file with the figure at ``path`` replaced by a plain number."""
    raw = copy.deepcopy(_h100())
    table = raw
    for key in path[:-1]:
        table = table[key]
    table[path[-1]] = value
    return raw


def _refusal(raw: dict[str, Any]) -> str:
    """The first error as a loader reports it: 'key.path: message'."""
    with pytest.raises(ValidationError) as info:
        HardwareSpec.model_validate(raw)
    first = info.value.errors()[0]
    return ".".join(str(p) for p in first["loc"]) + ": " + first["msg"]


FIGURES = [("memory_bandwidth",), ("memory_capacity",), ("kernel_launch_overhead",), ("peak_flops", "bf16"),
           ("caches", "l2"), ("efficiency", "memory"), ("efficiency", "kernel_overhead"),
           ("efficiency", "compute", "default"), ("interconnect", "intra_node", "bandwidth"),
           ("interconnect", "inter_node", "latency")]


@pytest.mark.parametrize("path", FIGURES, ids=".".join)
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_figures_are_refused_at_their_key(path: tuple[str, ...], value: float) -> None:
    message = _refusal(_with(path, value))
    assert message.startswith(".".join(path[:2]))
    assert "finite" in message or "greater than or equal to 0" in message


@pytest.mark.parametrize(("path", "value"), [
    (("memory_bandwidth",), 1e-300),  # the fuzzer's value: bytes / 1e-300 overflows every memory time to inf
    (("memory_bandwidth",), 3.35),  # TB/s written where B/s is meant
    (("memory_bandwidth",), 1e16),
    (("memory_capacity",), 80.0),  # GB written where bytes are meant
    (("memory_capacity",), 1e16),
    (("peak_flops", "bf16"), 989.4),  # TFLOP/s written where FLOP/s is meant
    (("peak_flops", "bf16"), 1e19),
    (("kernel_launch_overhead",), 2.0),
    (("caches", "l2"), 0.0),
    (("interconnect", "intra_node", "bandwidth"), 0.0),  # a collective over it would divide by zero
    (("interconnect", "inter_node", "latency"), 5.0),
    (("efficiency", "memory"), 0.0),  # was a ZeroDivisionError in the calibrated mode
    (("efficiency", "memory"), 5.0),  # was accepted: memory five times faster than the datasheet
    (("efficiency", "compute", "bf16"), 1.5),
    (("efficiency", "compute", "default"), 0.0),
    (("efficiency", "kernel_overhead"), 3.0),
])
def test_absurd_figures_are_refused_naming_the_key(path: tuple[str, ...], value: float) -> None:
    message = _refusal(_with(path, value))
    assert message.startswith(path[0])
    assert ".".join(path[-2:] if len(path) > 1 else path) in message or path[-1] in message


def test_per_kind_overheads_and_fractions_are_bounded() -> None:
    assert "kernel_overhead_by_kind" in _refusal(_with(("efficiency", "kernel_overhead_by_kind"), {"gemm": 10.0}))
    assert "memory_by_kind" in _refusal(_with(("efficiency", "memory_by_kind"), {"gemm": 1.2}))


def test_a_curve_with_infinite_rows_is_refused() -> None:
    curve = {"rows": [1.0, math.inf], "value": [0.5, 0.8]}
    assert "compute_curve" in _refusal(_with(("efficiency", "compute_curve"), {"bf16": curve}))


def test_devices_per_domain_is_bounded() -> None:
    assert "devices_per_domain" in _refusal(_with(("interconnect", "intra_node", "devices_per_domain"), 10**400))


@pytest.mark.parametrize(("path", "value"), [
    (("memory_bandwidth",), 1e9), (("memory_bandwidth",), 1e15), (("peak_flops", "bf16"), 1e18),
    (("memory_capacity",), 1e6), (("kernel_launch_overhead",), 0.0), (("efficiency", "memory"), 1.0),
    (("peak_flops", "int4"), 0.0),  # 0 still means "no such roof"
])
def test_the_bounds_themselves_are_accepted(path: tuple[str, ...], value: float) -> None:
    raw = _with(path, value)
    raw.pop("levels")  # its L2 is slower than a 1 PB/s DRAM and larger than a 1 MB one: refused, as it should be
    HardwareSpec.model_validate(raw)


def test_a_user_file_with_an_absurd_bandwidth_names_the_key(tmp_path: Path) -> None:
    f = tmp_path / "fast.toml"
    f.write_text(
        'name = "fast"\ndisplay_name = "Too fast"\nvendor = "me"\nkind = "gpu"\n'
        "memory_bandwidth = 1e-300\nmemory_capacity = 16e9\nkernel_launch_overhead = 2e-6\n"
        "[peak_flops]\nbf16 = 100e12\n"
        "[efficiency]\nmemory = 0.8\nkernel_overhead = 2e-6\n[efficiency.compute]\ndefault = 0.7\n"
    )
    with pytest.raises(rooflm.InvalidInputError, match=r"memory_bandwidth.*outside \[1e\+09, 1e\+15\] B/s"):
        rooflm.load_hardware(str(f))


@pytest.mark.parametrize("name", hardware_names())
def test_every_catalog_device_is_within_the_bounds(name: str) -> None:
    HardwareSpec.model_validate(tomllib.loads((HARDWARE_DIR / f"{name}.toml").read_text()))


def test_a_non_utf8_hardware_file_is_an_input_error(tmp_path: Path) -> None:
    # tomllib decodes the file as UTF-8: a Latin-1 byte raised a bare UnicodeDecodeError.
    f = tmp_path / "latin1.toml"
    f.write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(rooflm.InvalidInputError, match="not UTF-8"):
        rooflm.load_hardware(str(f))


def test_a_deeply_nested_hardware_file_is_an_input_error(tmp_path: Path) -> None:
    # tomllib parses arrays recursively: 100,000 brackets raised RecursionError.
    f = tmp_path / "deep.toml"
    f.write_text("caches = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(rooflm.InvalidInputError, match="nests too deeply"):
        rooflm.load_hardware(str(f))
