"""What was measured: the device, the software, the thread count and the date, for every `source` field."""

from __future__ import annotations

import datetime as dt
import os
import platform
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from rooflm.errors import InvalidInputError, arg
from rooflm.measure.timing import require_torch

_CACHE_LEVELS = Path("/sys/devices/system/cpu/cpu0/cache")


class Machine(BaseModel):
    """The device and software a set of measurements belongs to."""

    model_config = ConfigDict(frozen=True)

    device: str  # "cpu" or "cuda"
    device_name: str  # CPU model from /proc/cpuinfo, or the CUDA device name
    vendor: str
    hostname: str
    date: str  # ISO date of the measurement
    torch_version: str
    threads: int  # torch intra-op threads (CPU); 0 on CUDA
    cpu_count: int
    memory_capacity_bytes: float
    caches_bytes: dict[str, float] = {}  # l2, l3 (CPU) or l2 (GPU)
    driver: str = ""  # CUDA driver/runtime versions on a GPU
    busy_fraction: float = 0.0  # share of the CPUs other processes used just before measuring (noise warning)

    def describe(self) -> str:
        """One phrase for a `source` field."""
        threads = f", {self.threads} threads" if self.device == "cpu" else f", {self.driver}" if self.driver else ""
        return f"{self.date}, {self.device_name} ({self.hostname}), torch {self.torch_version}{threads}"

    @property
    def slug(self) -> str:
        """A file-name-safe label, e.g. ``cpu-2t`` or ``cuda-nvidia-h100``."""
        if self.device == "cpu":
            return f"cpu-{self.threads}t"
        return "cuda-" + "".join(c if c.isalnum() else "-" for c in self.device_name.lower()).strip("-")


def _cpu_model() -> tuple[str, str]:
    name, vendor = "", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            if key == "model name" and not name:
                name = value
            elif key == "vendor_id" and not vendor:
                vendor = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD"}.get(value, value)
    except OSError:  # not Linux: fall back to what platform says
        pass
    return name or platform.processor() or platform.machine() or "unknown CPU", vendor or "unknown"


def _meminfo_total() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def _parse_size(text: str) -> float:
    text = text.strip().upper()
    scale = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1:], 1)
    return float(text.rstrip("KMG")) * scale


def cpu_caches() -> dict[str, float]:
    """Per-level cache sizes from sysfs (unified and data caches), e.g. {"l2": 2 MiB, "l3": 480 MiB}."""
    out: dict[str, float] = {}
    for index in sorted(_CACHE_LEVELS.glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = _parse_size((index / "size").read_text())
        except (OSError, ValueError):
            continue
        if kind in ("Unified", "Data"):
            out[f"l{level}"] = size
    return out


# How long the CPUs are watched before measuring. A third of a second sees a background job (a build, another
# benchmark) that runs steadily; the test suite shortens it, as it measures nothing that needs the warning.
BUSY_WINDOW_S = 0.3


def busy_between(before: tuple[int, int], after: tuple[int, int]) -> float:
    """Share of CPU time that was busy between two /proc/stat samples (total jiffies, idle jiffies); 0 when no tick
    fell between them (nothing was seen, so nothing to warn of)."""
    (total0, idle0), (total1, idle1) = before, after
    return 1.0 - (idle1 - idle0) / (total1 - total0) if total1 > total0 else 0.0


def cpu_busy_fraction(window_s: float | None = None) -> float:
    """Share of all CPUs busy over a short window (from /proc/stat; 0 where unavailable). Measured before any of
    our work starts, it is what other processes take: with OpenMP threads, even one busy core slows every kernel."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields), idle

    try:
        before = sample()
        time.sleep(BUSY_WINDOW_S if window_s is None else window_s)
        after = sample()
    except (OSError, ValueError, IndexError):
        return 0.0
    return busy_between(before, after)


def describe_machine(device: str = "cpu") -> Machine:
    torch = require_torch()
    today = dt.date.today().isoformat()
    host = platform.node() or "unknown-host"
    if device == "cpu":
        name, vendor = _cpu_model()
        return Machine(device="cpu", device_name=name, vendor=vendor, hostname=host, date=today,
                       torch_version=torch.__version__, threads=torch.get_num_threads(), cpu_count=os.cpu_count() or 1,
                       memory_capacity_bytes=_meminfo_total(), caches_bytes=cpu_caches(),
                       busy_fraction=cpu_busy_fraction())
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InvalidInputError(f"{arg('device')} cuda: PyTorch sees no CUDA device here; use {arg('device')} cpu",
                                    "device")
        props = torch.cuda.get_device_properties(0)
        caches = {"l2": float(props.L2_cache_size)} if getattr(props, "L2_cache_size", 0) else {}
        major, minor = torch.cuda.get_device_capability(0)
        driver = f"CUDA {torch.version.cuda}, compute capability {major}.{minor}"
        return Machine(device="cuda", device_name=props.name, vendor="NVIDIA" if torch.version.cuda else "AMD",
                       hostname=host, date=today, torch_version=torch.__version__, threads=0,
                       cpu_count=os.cpu_count() or 1, memory_capacity_bytes=float(props.total_memory),
                       caches_bytes=caches, driver=driver)
    raise InvalidInputError(f"{arg('device')} must be cpu or cuda, got {device!r}", "device")
