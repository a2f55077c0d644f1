"""Derive rooflm's engine kernel tables (src/rooflm/data/engine_kernels/) from NVIDIA AIConfigurator's data.

AIConfigurator (the PyPI package ``aiconfigurator-core``, Apache-2.0) publishes per-kernel latency measured inside
TensorRT-LLM, vLLM and SGLang under CUDA-graph replay. This script reads its GEMM tables and writes, per device ×
engine, one TOML file: for each kernel family, every measured (N, K) cell as a curve of time vs M kept at the
measured points needed for rooflm's interpolation (rooflm.specs.engine_kernels) to reproduce every measured row of
that cell within TOLERANCE. The residual is measured on all rows, with the runtime's own interpolation and the
rounded figures written.

Usage (pyarrow and pyyaml: `pip install -e .[derive]`):
    pip download --no-deps aiconfigurator-core==0.12.0 -d /tmp/aic
    python -c "import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" /tmp/aic/*.whl /tmp/aic/x
    python tools/derive_kernels.py /tmp/aic/x

Running it again on the same package writes the same bytes (sorted keys, fixed float format).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
from rooflm.specs.engine_kernels import curve_log_time  # noqa: E402

SCRIPT_VERSION = "2"
PACKAGE = "aiconfigurator-core"
PACKAGE_VERSION = "0.12.0"
NOTICE = f"Derived from NVIDIA AIConfigurator ({PACKAGE} {PACKAGE_VERSION}), Apache License 2.0"
TOLERANCE = 0.2  # largest relative error allowed on any measured row of a cell
DIGITS = 3  # significant digits of the times written (rounding error <= 0.5%, inside the residual)
# A family slower than this many times the same table's bf16 GEMM at M = 1 is left out, with its figures: at one
# row a quantized GEMM moves fewer bytes, so such a floor is fixed time the harness charged (vLLM 0.24's block-fp8
# rows: 60 us on H100/H200 and 270 us on B200 at every shape), not the kernel a serving step runs.
SUSPECT_RATIO = 5.0
OUT = ROOT / "src" / "rooflm" / "data" / "engine_kernels"

# AIConfigurator's system name → rooflm's hardware file name.
DEVICES = {"h100_sxm": "h100-sxm", "h200_sxm": "h200", "b200_sxm": "b200"}
ENGINES = ("trtllm", "vllm", "sglang")
# AIConfigurator's gemm_dtype → rooflm's kernel family (rooflm.specs.kernels.kernel_family).
FAMILIES = {"bfloat16": "dense", "fp8": "fp8", "fp8_block": "fp8-block", "nvfp4": "fp4"}
# AIConfigurator's moe_dtype → rooflm's quantization scheme of the routed experts (data/quant_schemes.toml).
MOE_SCHEMES = {"bfloat16": "bf16", "fp8": "fp8", "fp8_block": "fp8-block", "nvfp4": "fp4", "w4a16_mxfp4": "mxfp4"}
# Of the table's routing distributions, the one rooflm's uniform routing is: every expert equally likely.
MOE_DISTRIBUTION = "balanced"


def version_key(version: str) -> tuple:
    """Order versions numerically ("1.3.0rc20" > "1.3.0rc10"; "0.5.14" > "0.5.6.post2")."""
    parts = []
    for piece in version.replace("rc", ".-1.").replace("post", "").split("."):
        parts.append(int(piece) if piece.lstrip("-").isdigit() else 0)
    return tuple(parts)


def newest_collected(root: Path, system: str, engine: str) -> Path | None:
    """The newest version folder of ``engine``'s GEMM table that holds a parquet file (a folder that declares
    reuse of another version's table holds none)."""
    base = root / "aiconfigurator_core" / "systems" / "data" / system / "gemm" / engine
    if not base.is_dir():
        return None
    found = [d for d in base.iterdir() if (d / "gemm_perf.parquet").is_file()]
    return max(found, key=lambda d: version_key(d.name)) if found else None


def fmt(x: float) -> str:
    """A positive figure in DIGITS significant digits, positional (1067.2 → "1070", 9.8712 → "9.87")."""
    return np.format_float_positional(x, precision=DIGITS, unique=False, fractional=False, trim="-")


def fmt_up(x: float) -> str:
    """``fmt`` rounded up, so that a stated bound holds for the figure it bounds."""
    scale = 10.0 ** (DIGITS - 1 - math.floor(math.log10(x)))
    return fmt(math.ceil(x * scale) / scale)


@dataclass
class Fit:
    cells: list[tuple[int, int, list[int], list[float]]]  # n, k, kept M, rounded µs
    residuals: np.ndarray  # |predicted / measured − 1| over every row


def knots(ms: np.ndarray, us: np.ndarray) -> list[int]:
    """Indices of the measured points kept: both ends, then repeatedly the worst-reproduced point, until every
    point is within TOLERANCE (greedy; each kept point is a measured one)."""
    lm, lt = np.log(ms), np.log(us)
    keep = {0, len(ms) - 1}
    while True:
        idx = sorted(keep)
        err = np.abs(np.expm1(curve_log_time(lm[idx], lt[idx], lm) - lt))
        worst = int(np.argmax(err))
        if err[worst] <= TOLERANCE or worst in keep:
            return idx
        keep.add(worst)


def single_row_times(m: np.ndarray, n: np.ndarray, k: np.ndarray, us: np.ndarray) -> dict[tuple[int, int], float]:
    """Each (N, K) cell's time at M = 1 (a weight-bound GEMV: the kernel's floor)."""
    one = m == 1
    return {(int(a), int(b)): float(t) for a, b, t in zip(n[one], k[one], us[one], strict=True)}


def fit_family(m: np.ndarray, n: np.ndarray, k: np.ndarray, us: np.ndarray) -> Fit:
    cells, residuals = [], []
    for nn, kk in sorted(set(zip(n.tolist(), k.tolist(), strict=True))):
        sel = (n == nn) & (k == kk)
        order = np.argsort(m[sel])
        ms, ts = m[sel][order].astype(float), us[sel][order]
        idx = knots(ms, ts)
        kept_t = [float(fmt(t)) for t in ts[idx]]
        pred = curve_log_time(np.log(ms[idx]), np.log(np.asarray(kept_t)), np.log(ms))
        residuals.append(np.abs(np.expm1(pred - np.log(ts))))
        cells.append((int(nn), int(kk), [int(x) for x in ms[idx]], kept_t))
    return Fit(cells, np.concatenate(residuals))


def collection(meta_path: Path, gpu: str) -> dict[str, object]:
    """What collection_meta.yaml says of how the table was collected (the GPU from the table's own column)."""
    meta = yaml.safe_load(meta_path.read_text())
    runtime = meta.get("runtime", {})
    out: dict[str, object] = {"gpu": gpu, "provenance": meta.get("provenance", ""),
                              "framework": runtime.get("framework", ""),
                              "framework_version": str(runtime.get("version", ""))}
    if "image" in runtime:
        out["image"] = runtime["image"]
    table = meta.get("tables", {}).get("gemm_perf", {})
    dates = sorted({str(c["collected_at"]) for c in table.get("collections", []) if "collected_at" in c})
    out["collected_at"] = dates if dates else "not stated in collection_meta.yaml"
    out["status"] = table.get("status", "")
    return out


def act_quant_included(engine: str, source_dtype: str, kernels: Counter, meta_text: str) -> tuple[bool, str]:
    """Whether the timed op of a quantized family includes the quantization of its input, and the evidence: the
    kernel names the table records and what its collection_meta.yaml says."""
    names = ", ".join(sorted(kernels))
    if engine == "trtllm":
        return True, (f"kernel_source {names}: the timed op is TensorRT-LLM's Linear module forward (PyTorch flow), "
                      "which quantizes its input before the GEMM")
    if engine == "vllm":
        return True, (f"kernel_source {names}: the timed op is vLLM's linear kernel (its apply_weights), which "
                      "quantizes its input before the GEMM")
    if source_dtype == "fp8_block" and "act-quant + gemm" in meta_text:
        return True, "collection_meta.yaml: the timed op is act-quant + gemm"
    return False, (f"kernel_source {names} names the GEMM kernel alone and collection_meta.yaml does not say the "
                   "input quantization is timed")


def toml_value(v: object) -> str:
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return fmt(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(type(v))


def derive(root: Path, system: str, engine: str) -> tuple[str, list[str]] | None:
    folder = newest_collected(root, system, engine)
    if folder is None:
        return None
    rel = folder.relative_to(root)
    table = pq.read_table(folder / "gemm_perf.parquet").to_pydict()
    dtype = np.asarray(table["gemm_dtype"])
    gpus = sorted(set(table["device"]))
    lines = [
        f"# Measured GEMM latency of {engine} {folder.name} on {', '.join(gpus)} (rooflm device {DEVICES[system]}).",
        f"# NOTICE: {NOTICE}.",
        "# Written by tools/derive_kernels.py: do not edit by hand; run the script again.",
        "# Each [gemm.<family>] holds every measured (N, K) cell: M = GEMM rows (tokens), us = microseconds per",
        "# GEMM [M,K]x[K,N], kept at the measured M needed for log-log interpolation in M to reproduce every",
        "# measured row within `tolerance` (residual_* over all rows); rooflm.specs.engine_kernels interpolates.",
        "# Each [moe.<scheme>] holds the routed experts of one MoE layer (the whole fused expert computation: gate/up",
        "# GEMM, activation, down GEMM) for rooflm's catalog MoE shapes: per (hidden, inter = expert width before",
        "# moe tp, topk, experts, tp = moe tp, ep = moe ep), us = microseconds vs tokens entering the layer, with",
        "# balanced routing.",
        "",
    ]
    header = {"notice": NOTICE, "license": "Apache-2.0", "package": PACKAGE, "package_version": PACKAGE_VERSION,
              "script": "tools/derive_kernels.py", "script_version": SCRIPT_VERSION,
              "device": DEVICES[system], "engine": engine, "engine_version": folder.name}
    lines += [f"{key} = {toml_value(value)}" for key, value in header.items()]
    lines += ["", "[collection]", f"meta_file = {toml_value(str(rel / 'collection_meta.yaml'))}"]
    lines += [f"{key} = {toml_value(value)}" for key, value in
              collection(folder / "collection_meta.yaml", ", ".join(gpus)).items()]
    meta_text = (folder / "collection_meta.yaml").read_text()
    report, sections, left_out = [], [], {}
    bf16_floor = None
    for source_dtype, family in FAMILIES.items():
        sel = dtype == source_dtype
        if not sel.any():
            continue
        m, n, k = (np.asarray(table[c])[sel] for c in ("m", "n", "k"))
        us = np.asarray(table["latency"])[sel] * 1e3  # the table's latency is in milliseconds
        floor = single_row_times(m, n, k, us)
        if bf16_floor is None:
            bf16_floor = floor
        ratio = float(np.median([floor[c] / bf16_floor[c] for c in floor if c in bf16_floor]))
        if ratio > SUSPECT_RATIO:
            left_out[family] = (f"{source_dtype}: {int(sel.sum())} rows left out: at M = 1 its median time is "
                                f"{ratio:.1f}x the bfloat16 GEMM of the same shape in this table (median "
                                f"{np.median(list(floor.values())):.1f} us), where it moves half the weight bytes")
            report.append(f"{DEVICES[system]} {engine} {folder.name} {family}: LEFT OUT ({left_out[family]})")
            continue
        fit = fit_family(m, n, k, us)
        kernels = Counter(np.asarray(table["kernel_source"])[sel].tolist())
        med, worst = float(np.median(fit.residuals)), float(np.max(fit.residuals))
        p90 = float(np.percentile(fit.residuals, 90))
        knots_kept = sum(len(c[2]) for c in fit.cells)
        sections += ["", f"[gemm.{family}]",
                     f"source_file = {toml_value(str(rel / 'gemm_perf.parquet'))}",
                     f"source_dtype = {toml_value(source_dtype)}",
                     f"kernels = {toml_value([f'{name} ({count} rows)' for name, count in sorted(kernels.items())])}"]
        if source_dtype != "bfloat16":
            included, evidence = act_quant_included(engine, source_dtype, kernels, meta_text)
            sections += [f"act_quant_included = {toml_value(included)}", f"act_quant_evidence = {toml_value(evidence)}"]
        sections += [f"rows = {int(sel.sum())}",
                     f"points_kept = {knots_kept}",
                     f"tolerance = {fmt(TOLERANCE)}",
                     f"residual_median = {fmt(med)}",
                     f"residual_p90 = {fmt_up(p90)}",
                     f"residual_max = {fmt_up(worst)}",
                     "cells = ["]
        sections += [f"  {{ n = {nn}, k = {kk}, m = [{','.join(map(str, ms))}], us = [{','.join(map(fmt, ts))}] }},"
                     for nn, kk, ms, ts in fit.cells]
        sections += ["]"]
        report.append(f"{DEVICES[system]} {engine} {folder.name} {family}: {int(sel.sum())} rows, {knots_kept} kept, "
                      f"residual median {med:.4f} p90 {p90:.4f} max {worst:.4f}")
    if left_out:
        lines += ["", "[left_out]"] + [f"{toml_value(f)} = {toml_value(why)}" for f, why in left_out.items()]
    lines += sections
    moe_sections, moe_report = derive_moe(root, system, engine, folder.name)
    lines += moe_sections
    return "\n".join(lines) + "\n", report + moe_report


def catalog_moe_shapes() -> dict[tuple[int, int, int, int], str]:
    """(hidden, expert intermediate size, top-k, experts) of every MoE model in rooflm's catalog → its name: the
    MoE configurations kept (the tables hold many more)."""
    from rooflm.specs.hf_config import load_model
    shapes: dict[tuple[int, int, int, int], str] = {}
    for path in sorted((ROOT / "src" / "rooflm" / "data" / "models").iterdir()):
        if not path.is_dir():
            continue
        spec = load_model(path.name)
        if spec.moe is not None:
            key = (spec.hidden_size, spec.moe.expert.intermediate_size, spec.moe.top_k, spec.moe.num_experts)
            shapes.setdefault(key, path.name)
    return shapes


@dataclass
class MoeConfig:
    model: str
    hidden: int
    inter: int
    topk: int
    experts: int
    tp: int
    ep: int
    tokens: list[int]
    us: list[float]


def fit_moe(d: dict[str, np.ndarray], shapes: dict[tuple[int, int, int, int], str]) -> tuple[list[MoeConfig], np.ndarray, int]:
    """Each kept (shape, moe_tp, moe_ep) as a curve of time vs tokens: at each token count the fastest of the
    table's kernels for it (an engine runs the backend it picks; where the table timed two, the faster), with the
    residual at every token count (against that fastest time) and the table rows read."""
    keys = ("hidden_size", "inter_size", "topk", "num_experts", "moe_tp_size", "moe_ep_size")
    cols = np.stack([d[k] for k in keys], axis=1)
    configs, residuals, rows = [], [], 0
    for combo in sorted({tuple(int(x) for x in row) for row in cols}):
        if combo[:4] not in shapes:
            continue
        sel = np.all(cols == np.asarray(combo), axis=1)
        tok, us = d["num_tokens"][sel], d["us"][sel]
        rows += int(sel.sum())
        grid = np.unique(tok)
        best = np.asarray([us[tok == t].min() for t in grid])
        idx = knots(grid.astype(float), best)
        kept = [float(fmt(t)) for t in best[idx]]
        pred = curve_log_time(np.log(grid[idx].astype(float)), np.log(np.asarray(kept)), np.log(grid.astype(float)))
        residuals.append(np.abs(np.expm1(pred - np.log(best))))
        configs.append(MoeConfig(shapes[combo[:4]], *combo, [int(x) for x in grid[idx]], kept))
    return configs, (np.concatenate(residuals) if residuals else np.zeros(0)), rows


def derive_moe(root: Path, system: str, engine: str, version: str) -> tuple[list[str], list[str]]:
    """The [moe.<scheme>] sections of ``engine`` ``version`` on ``system`` (none where that version has no MoE
    table), and the lines of the report."""
    folder = root / "aiconfigurator_core" / "systems" / "data" / system / "moe" / engine / version
    if not (folder / "moe_perf.parquet").is_file():
        return [], [f"{DEVICES[system]} {engine} {version} moe: no table"]
    rel = folder.relative_to(root)
    table = pq.read_table(folder / "moe_perf.parquet").to_pydict()
    shapes = catalog_moe_shapes()
    sections, report = [], []
    dtype, dist = np.asarray(table["moe_dtype"]), np.asarray(table["distribution"])
    for source_dtype, scheme in MOE_SCHEMES.items():
        sel = (dtype == source_dtype) & (dist == MOE_DISTRIBUTION)
        if not sel.any():
            continue
        cols = ("hidden_size", "inter_size", "topk", "num_experts", "moe_tp_size", "moe_ep_size", "num_tokens")
        d = {c: np.asarray(table[c])[sel] for c in cols}
        d["us"] = np.asarray(table["latency"])[sel] * 1e3  # milliseconds in the table
        configs, res, rows = fit_moe(d, shapes)
        if not configs:
            continue
        shape = zip(d["hidden_size"], d["inter_size"], d["topk"], d["num_experts"], strict=True)
        kept = np.asarray([tuple(int(x) for x in key) in shapes for key in shape])
        kernels = Counter(np.asarray(table["kernel_source"])[sel][kept].tolist())
        med, p90, worst = float(np.median(res)), float(np.percentile(res, 90)), float(np.max(res))
        models = sorted({c.model for c in configs})
        sections += ["", f"[moe.{scheme}]",
                     f"source_file = {toml_value(str(rel / 'moe_perf.parquet'))}",
                     f"source_dtype = {toml_value(source_dtype)}",
                     f"distribution = {toml_value(MOE_DISTRIBUTION)}",
                     f"kernels = {toml_value([f'{name} ({count} rows)' for name, count in sorted(kernels.items())])}",
                     f"models = {toml_value(models)}",
                     f"rows = {rows}",
                     f"points = {len(res)}",
                     "point = \"the fastest kernel's time at each measured token count\"",
                     f"tolerance = {fmt(TOLERANCE)}",
                     f"residual_median = {fmt(med) if med > 0 else '0.0'}",
                     f"residual_p90 = {fmt_up(p90) if p90 > 0 else '0.0'}",
                     f"residual_max = {fmt_up(worst) if worst > 0 else '0.0'}",
                     "configs = ["]
        sections += [f"  {{ model = {toml_value(c.model)}, hidden = {c.hidden}, inter = {c.inter}, topk = {c.topk}, "
                     f"experts = {c.experts}, tp = {c.tp}, ep = {c.ep}, tokens = [{','.join(map(str, c.tokens))}], "
                     f"us = [{','.join(map(fmt, c.us))}] }}," for c in configs]
        sections += ["]"]
        report.append(f"{DEVICES[system]} {engine} {version} moe {scheme}: {rows} rows, {len(configs)} configs "
                      f"({', '.join(models)}), residual median {med:.4f} p90 {p90:.4f} max {worst:.4f}")
    return sections, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package_root", type=Path, help="the unpacked aiconfigurator-core wheel")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for system, device in DEVICES.items():
        for engine in ENGINES:
            result = derive(args.package_root, system, engine)
            if result is None:
                continue
            text, report = result
            (args.out / f"{device}-{engine}.toml").write_text(text)
            print("\n".join(report))


if __name__ == "__main__":
    main()
