"""Measured GEMM latency of the serving engines' own kernels (data/engine_kernels/<device>-<engine>.toml).

Each file holds one engine (TensorRT-LLM, vLLM or SGLang, at one version) on one device: per kernel family
("dense" for bf16, "fp8" per-tensor, "fp8-block", "fp4"), the measured time of a GEMM [M,K]×[K,N] on the table's
grid of N and K, each (N, K) cell as a curve of time vs M kept at the measured points needed to reproduce every
measured row within the file's stated residual. tools/derive_kernels.py writes the files from NVIDIA
AIConfigurator's published tables (Apache-2.0); every file names its source and the residual of its curves.

Interpolation (``GemmTable.time``):
- in M, within a cell: piecewise linear in log M, log time between the kept points (so monotone wherever the
  measured points are); above a cell's largest measured M, time ∝ M (the GEMM is compute-bound there and more
  rows are more tiles); below its smallest M, that M's time (M < 1 does not occur);
- in N and K: bilinear in log N, log K of log time between the four surrounding cells; above the grid's largest
  N or K, the time at the largest scaled in proportion (a wider GEMM is that many more tiles); below the smallest,
  the smallest's time (a narrower GEMM still runs one tile, so it takes no less; this is an upper bound there);
- a cell the table did not measure (the largest N × K, where the weights would not fit) is its measured
  neighbour at the next smaller K (or N) scaled in proportion to K (or N), the same rule as above the grid.

MoE (``MoeTable.time``): the time of one MoE layer's routed experts (the engine's fused grouped-GEMM module:
gate/up GEMM, activation, down GEMM) vs the tokens entering the layer, for the measured configurations only: an
exact (hidden, expert width, top-k, experts, expert TP, EP) match, interpolated in tokens like a GEMM cell in M.
Between configurations nothing is interpolated (a different expert count or width is a different kernel schedule):
such a layer keeps the generic kernel families.

Nothing here reads the engines' raw tables or needs their package; files are parsed on first use and cached.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from rooflm.errors import InvalidInputError

ENGINE_KERNELS_DIR = Path(__file__).resolve().parent.parent / "data" / "engine_kernels"
ENGINES = ("trtllm", "vllm", "sglang")
US = 1e-6  # the files hold microseconds


def curve_log_time(log_m_knots: np.ndarray, log_t_knots: np.ndarray, log_m: np.ndarray) -> np.ndarray:
    """Log time of one (N, K) cell at ``log_m``: linear between knots, slope 1 (time ∝ M) above the last, flat
    below the first. tools/derive_kernels.py measures its residual with this same function."""
    out = np.interp(log_m, log_m_knots, log_t_knots)
    above = log_m > log_m_knots[-1]
    return np.where(above, log_t_knots[-1] + (log_m - log_m_knots[-1]), out)


@dataclass(frozen=True)
class Cell:
    """One (N, K) cell: its kept M points and times, in logs; ``scale`` multiplies a neighbour's curve for a
    cell the table did not measure (1 for a measured one)."""

    log_m: np.ndarray
    log_t: np.ndarray
    log_scale: float = 0.0

    def log_time(self, log_m: np.ndarray) -> np.ndarray:
        return curve_log_time(self.log_m, self.log_t, log_m) + self.log_scale


def _bracket(axis: np.ndarray, x: float) -> tuple[int, int, float, float]:
    """The two grid indices around ``x``, the weight of the upper one in log space, and the log of the
    proportional factor applied beyond the top of the axis (0 inside or below it: clamped)."""
    if x >= axis[-1]:
        return len(axis) - 1, len(axis) - 1, 0.0, float(np.log(x / axis[-1]))
    if x <= axis[0]:
        return 0, 0, 0.0, 0.0
    hi = int(np.searchsorted(axis, x, side="right"))
    lo = hi - 1
    w = float(np.log(x / axis[lo]) / np.log(axis[hi] / axis[lo]))
    return lo, hi, w, 0.0


@dataclass(frozen=True)
class GemmTable:
    """One kernel family's measured GEMMs of one engine on one device, with where they come from."""

    family: str
    source: dict[str, object]
    n: np.ndarray
    k: np.ndarray
    cells: dict[tuple[int, int], Cell]

    @property
    def residual_median(self) -> float:
        return float(self.source["residual_median"])  # type: ignore[arg-type]

    @property
    def residual_max(self) -> float:
        return float(self.source["residual_max"])  # type: ignore[arg-type]

    @property
    def act_quant_included(self) -> bool:
        """Whether the measured op includes the quantization of the GEMM's input (the file's act_quant_evidence says
        why); bf16 GEMMs have none to include."""
        return bool(self.source.get("act_quant_included", False))

    def time(self, m: np.ndarray | float, n: float, k: float) -> np.ndarray:
        """Seconds of one GEMM [M,K]×[K,N] for every M of ``m`` (an array of any shape, or a number)."""
        log_m = np.log(np.maximum(np.asarray(m, dtype=float), 1.0))
        n0, n1, wn, sn = _bracket(self.n, float(n))
        k0, k1, wk, sk = _bracket(self.k, float(k))
        total = np.zeros_like(log_m)
        for ni, w_n in ((n0, 1.0 - wn), (n1, wn)):
            for ki, w_k in ((k0, 1.0 - wk), (k1, wk)):
                if w_n * w_k > 0.0:
                    cell = self.cells[(int(self.n[ni]), int(self.k[ki]))]
                    total = total + w_n * w_k * cell.log_time(log_m)
        return np.exp(total + sn + sk) * US


def _fill_missing(n: np.ndarray, k: np.ndarray, cells: dict[tuple[int, int], Cell]) -> None:
    """Give every unmeasured (N, K) of the grid its neighbour's curve at the next smaller K (else N), scaled in
    proportion, as above the grid."""
    for ni in n:
        for ki in k:
            if (int(ni), int(ki)) in cells:
                continue
            lower_k = [kk for kk in k if kk < ki and (int(ni), int(kk)) in cells]
            lower_n = [nn for nn in n if nn < ni and (int(nn), int(ki)) in cells]
            if lower_k:
                ref, ratio = cells[(int(ni), int(lower_k[-1]))], ki / lower_k[-1]
            elif lower_n:
                ref, ratio = cells[(int(lower_n[-1]), int(ki))], ni / lower_n[-1]
            else:
                raise ValueError(f"engine kernels: no measured cell below N={ni} K={ki}")
            cells[(int(ni), int(ki))] = Cell(ref.log_m, ref.log_t, ref.log_scale + float(np.log(ratio)))


def _gemm_table(family: str, raw: dict) -> GemmTable:
    cells: dict[tuple[int, int], Cell] = {}
    for c in raw["cells"]:
        m = np.asarray(c["m"], dtype=float)
        t = np.asarray(c["us"], dtype=float)
        cells[(int(c["n"]), int(c["k"]))] = Cell(np.log(m), np.log(t))
    n = np.asarray(sorted({nk[0] for nk in cells}), dtype=float)
    k = np.asarray(sorted({nk[1] for nk in cells}), dtype=float)
    _fill_missing(n, k, cells)
    source = {key: value for key, value in raw.items() if key != "cells"}
    return GemmTable(family, source, n, k, cells)


MoeKey = tuple[int, int, int, int, int, int]  # hidden, expert intermediate size, top-k, experts, expert TP, EP


@dataclass(frozen=True)
class MoeTable:
    """One quantization scheme's measured MoE layers of one engine on one device, with where they come from."""

    scheme: str
    source: dict[str, object]
    configs: dict[MoeKey, Cell]
    models: dict[MoeKey, str]

    @property
    def residual_max(self) -> float:
        return float(self.source["residual_max"])  # type: ignore[arg-type]

    def time(self, key: MoeKey, tokens: np.ndarray | float) -> np.ndarray | None:
        """Seconds of one MoE layer's routed experts at ``tokens`` (any shape); None where ``key`` was not
        measured."""
        cell = self.configs.get(key)
        if cell is None:
            return None
        return np.exp(cell.log_time(np.log(np.maximum(np.asarray(tokens, dtype=float), 1.0)))) * US


def _moe_table(scheme: str, raw: dict) -> MoeTable:
    configs: dict[MoeKey, Cell] = {}
    models: dict[MoeKey, str] = {}
    for c in raw["configs"]:
        key = (int(c["hidden"]), int(c["inter"]), int(c["topk"]), int(c["experts"]), int(c["tp"]), int(c["ep"]))
        configs[key] = Cell(np.log(np.asarray(c["tokens"], dtype=float)), np.log(np.asarray(c["us"], dtype=float)))
        models[key] = str(c["model"])
    return MoeTable(scheme, {k: v for k, v in raw.items() if k != "configs"}, configs, models)


@dataclass(frozen=True)
class EngineTables:
    """Everything measured for one engine on one device: the file's provenance and its GEMM families."""

    device: str
    engine: str
    version: str
    provenance: dict[str, object]
    gemm: dict[str, GemmTable]
    moe: dict[str, MoeTable]


def table_path(device: str, engine: str) -> Path:
    return ENGINE_KERNELS_DIR / f"{device}-{engine}.toml"


@cache
def _load(path: Path) -> EngineTables:
    with path.open("rb") as fh:
        raw = tomllib.load(fh)
    gemm = {family: _gemm_table(family, entry) for family, entry in raw.pop("gemm").items()}
    moe = {scheme: _moe_table(scheme, entry) for scheme, entry in raw.pop("moe", {}).items()}
    return EngineTables(raw["device"], raw["engine"], raw["engine_version"], raw, gemm, moe)


def parse_engine(text: str) -> tuple[str, str | None]:
    """``"vllm"`` → ("vllm", None); ``"vllm@0.24"`` → ("vllm", "0.24"). An unknown engine is refused."""
    name, _, version = text.strip().partition("@")
    name = name.strip().lower()
    if name not in ENGINES:
        raise InvalidInputError(f"unknown engine {text!r}; known: {', '.join(ENGINES)} (optionally @version)",
                                "engine")
    return name, (version.strip() or None)


def _version_matches(asked: str | None, have: str) -> bool:
    """A version asked as a prefix of components matches ("0.24" matches "0.24.0", not "0.2")."""
    if asked is None:
        return True
    return have == asked or have.startswith(asked + ".")


def engine_tables(device: str, engine: str) -> EngineTables | None:
    """The measured tables of ``engine`` ("vllm" or "vllm@0.24.0") on ``device`` (a hardware file's name), or
    None where none were measured (that device, that engine, or that version)."""
    name, version = parse_engine(engine)
    path = table_path(device, name)
    if not path.is_file():
        return None
    tables = _load(path)
    return tables if _version_matches(version, tables.version) else None


def gemm_table(device: str, engine: str, family: str) -> GemmTable | None:
    """One family's table, or None where the engine has none on this device (callers use the generic curves)."""
    tables = engine_tables(device, engine)
    return None if tables is None else tables.gemm.get(family)


def gemm_time(device: str, engine: str, family: str, m: np.ndarray | float, n: float, k: float) -> np.ndarray | None:
    """Seconds of a GEMM [M,K]×[K,N] of ``family`` ("dense", "fp8", "fp8-block", "fp4") as ``engine`` runs it on
    ``device``, for every M of ``m``; None without a table."""
    table = gemm_table(device, engine, family)
    return None if table is None else table.time(m, n, k)


def measured_devices(engine: str) -> list[str]:
    """The devices that have a table for ``engine`` (by file name; nothing is parsed)."""
    name, _ = parse_engine(engine)
    suffix = f"-{name}.toml"
    return sorted(p.name.removesuffix(suffix) for p in ENGINE_KERNELS_DIR.glob(f"*{suffix}"))
