"""Write a measured machine as a hardware file in the catalog's own schema (usable as ``--hardware FILE``).

Every figure says where it comes from: "measured by rooflm measure on <date>, <machine>, torch <ver>,
<threads> threads", plus how (which benchmark, how many runs). The file is checked by loading it back.
"""

from __future__ import annotations

import json
from pathlib import Path

from rooflm.errors import InvalidInputError
from rooflm.measure.calibrate import Calibration
from rooflm.measure.machine import Machine
from rooflm.measure.results import Measurements
from rooflm.measure.working_set import PRIVATE, measured_levels
from rooflm.specs.files import write_atomic
from rooflm.specs.hardware import HardwareSpec, read_hardware_file


def _q(text: str) -> str:
    """A TOML basic string (JSON's escaping is valid TOML for these characters)."""
    return json.dumps(text, ensure_ascii=False)


def _figure(value: float, source: str, note: str = "") -> str:
    parts = [f"value = {value:.6g}", f"source = {_q(source)}"]
    if note:
        parts.append(f"note = {_q(note)}")
    return "{ " + ", ".join(parts) + " }"


def default_name(machine: Machine) -> str:
    return f"measured-{machine.slug}"


def levels_toml(m: Measurements, dram_bandwidth: float) -> list[str]:
    """[[levels]] from the working-set sweep (CPU), innermost first; none without one."""
    src = (f"measured by rooflm measure on {m.machine.describe()}: fastest read over working sets inside the level "
           "(rooflm.measure.working_set)")
    out: list[str] = []
    for name, bandwidth, capacity in measured_levels(m.working_set, m.machine.caches_bytes, m.machine.threads,
                                                     dram_bandwidth):
        if capacity >= m.machine.memory_capacity_bytes:
            continue
        shared = "private per core, summed over the threads" if name in PRIVATE else "shared"
        out += ["", "[[levels]]", f"name = {_q(name)}", f"bandwidth = {_figure(bandwidth, src)}",
                f"capacity = {_figure(capacity, src, f'the OS figure ({shared})')}"]
    return out


def hardware_toml(cal: Calibration, machine: Machine, name: str | None = None, levels: list[str] | None = None) -> str:
    src = f"measured by rooflm measure on {machine.describe()}"
    fig = _figure
    lines = [
        f"# {machine.device_name}, measured by `rooflm measure` on {machine.date}. SI units: FLOP/s, bytes/s,",
        "# bytes, seconds. Roofs are the fastest runs measured; [efficiency] holds what kernels typically get (medians).",
        f"name = {_q(name or default_name(machine))}",
        f"display_name = {_q(f'{machine.device_name} (measured {machine.date}, {machine.slug})')}",
        f"vendor = {_q(machine.vendor)}",
        f"kind = {_q('cpu' if machine.device == 'cpu' else 'gpu')}",
        "aliases = []",
        f"memory_bandwidth = {fig(cal.memory_bandwidth, src, cal.bandwidth_note)}",
        f"memory_capacity = {fig(machine.memory_capacity_bytes, src, 'total memory the OS or driver reports')}",
        f"kernel_launch_overhead = {fig(cal.dispatch_overhead_s, src, 'one-element add, back to back')}",
        "",
        "[peak_flops]",
        *(f"{d} = {fig(v, src, cal.peak_notes[d])}" for d, v in cal.peak_flops.items()),
        "",
        "[caches]",
        *(f"{level} = {fig(size, src, 'size reported by the OS')}" for level, size in machine.caches_bytes.items()),
        "",
        "[efficiency]",
        f"memory = {fig(cal.memory_efficiency, src, cal.memory_efficiency_note)}",
        f"kernel_overhead = {fig(cal.op_overhead_s, src, cal.overhead_note)}",
        "",
        "[efficiency.compute]",
        *(f"{d} = {fig(v, src, 'square matmul median / peak' if d != 'default' else 'the bf16 fraction')}"
          for d, v in cal.compute_efficiency.items()),
    ]
    for dtype, (rows, values) in cal.compute_curve.items():
        lines += ["", f"[efficiency.compute_curve.{dtype}]", f"rows = {json.dumps(rows)}",
                  f"value = [{', '.join(f'{v:.4g}' for v in values)}]", f"source = {_q(src)}",
                  f"note = {_q(cal.curve_notes[dtype])}"]
    if cal.memory_by_kind:
        lines += ["", "[efficiency.memory_by_kind]",
                  *(f"{k} = {fig(v, src, cal.memory_by_kind_notes.get(k, ''))}" for k, v in cal.memory_by_kind.items())]
    lines += families_toml(cal)
    lines += ["", "[efficiency.kernel_overhead_by_kind]",
              "embedding = " + fig(cal.op_overhead_s + cal.step_overhead_s, src,
                                   "the per-operator cost plus the fixed cost of each forward call (masks, rotary "
                                   "tables, output objects), charged once per step to its first operator")]
    return "\n".join(lines + (levels or [])) + "\n"


def families_toml(cal: Calibration) -> list[str]:
    """[efficiency.kernel_families.<family>]: this device's own kernel families (calibrate.kernel_families)."""
    out: list[str] = []
    for family, c in cal.kernel_families.items():
        out += ["", f"[efficiency.kernel_families.{family}]",
                f"memory = {_figure(c.memory.value, c.memory.source, c.memory.note)}",
                f"fill = {_figure(c.fill.value, c.fill.source, c.fill.note)}"]
        if c.compute is not None:
            out += ["", f"[efficiency.kernel_families.{family}.compute]",
                    f"rows = [{', '.join(f'{r:g}' for r in c.compute.rows)}]",
                    f"value = [{', '.join(f'{v:.4g}' for v in c.compute.value)}]",
                    f"source = {_q(c.compute.source)}", f"note = {_q(c.compute.note)}"]
    return out


def write_hardware_file(path: Path, cal: Calibration, m: Measurements, name: str | None = None) -> HardwareSpec:
    """Write the TOML and, beside it, ``<stem>.raw.json`` with every raw measurement; return the loaded spec."""
    if path.suffix != ".toml":
        raise InvalidInputError(f"-o {path}: a hardware file must end in .toml")
    write_atomic(path, hardware_toml(cal, m.machine, name, levels_toml(m, cal.memory_bandwidth)), str(path),
                 field="output")
    write_atomic(raw_path(path), m.model_dump_json(indent=1) + "\n", str(raw_path(path)), field="output")
    return read_hardware_file(path)


def raw_path(path: Path) -> Path:
    return path.with_name(path.stem + ".raw.json")
