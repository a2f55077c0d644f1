"""Regenerate examples/measurements.csv: synthetic measurements made by rooflm itself at known parameters.

    python benchmarks/make_example_table.py [-o examples/measurements.csv]

Each row is rooflm's calibrated prediction on h100-sxm at TRUTH, times log-normal noise of 3% (numpy seed 7),
written as the row's measurement column (tpot_s, ttft_s or tokens_per_s). Two large dense models (few kernels per
byte) and two small models with different kernel counts per step (gpt-oss-20b: 339, qwen3-30b-a3b: 723, whose
batch-1 decode steps are a third to half overhead) make every parameter identifiable: without the small ones,
kernel_overhead and step_overhead are confounded (both add a fixed time per step; see `rooflm fit`'s warning).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from rooflm.fit.solve import Predictor
from rooflm.fit.table import Point

TRUTH = {"eta_memory": 0.72, "eta_compute": 0.62, "kernel_overhead": 3e-6, "step_overhead": 4e-4}
NOISE, SEED = 0.03, 7
# (phase, batch, length, measurement column); length is the context of a decode row, the prompt of a prefill.
LARGE = [("decode", 1, 1024, "tpot_s"), ("decode", 8, 1024, "tpot_s"), ("decode", 32, 2048, "tpot_s"),
         ("decode", 128, 4096, "tpot_s"), ("prefill", 1, 512, "ttft_s"), ("prefill", 1, 4096, "ttft_s"),
         ("prefill", 4, 2048, "ttft_s"), ("decode", 64, 1024, "tokens_per_s")]
SMALL = [("decode", 1, 256, "tpot_s"), ("decode", 1, 2048, "tpot_s"), ("decode", 8, 1024, "tpot_s"),
         ("decode", 32, 1024, "tokens_per_s"), ("prefill", 1, 128, "ttft_s"), ("prefill", 1, 1024, "ttft_s")]
MODELS = {"llama-3.1-8b": LARGE, "qwen3-32b": LARGE, "gpt-oss-20b": SMALL, "qwen3-30b-a3b": SMALL}
COLUMNS = ("model", "hardware", "phase", "batch", "prompt_len", "context", "tpot_s", "ttft_s", "tokens_per_s")

HEADER = """\
# A measurement table for `rooflm fit examples/measurements.csv -o profile.toml`.
#
# One row per measured point. Lines starting with '#' and blank lines are ignored; the first other line is the
# header. Columns are named like the CLI flags (prompt_len or prompt-len): model, hardware, phase, batch,
# prompt_len, context, gen_len, lm_head_all_tokens, and the deployment flags (quant, kv_dtype, tp, ep, pp, dp,
# comm_algorithm, cuda_graphs, max_num_batched_tokens, ...). An empty or missing cell takes the CLI default
# (llama-3.1-8b, h100-sxm, decode, batch 1, prompt_len 1024, context = prompt_len, gen_len 256, bf16, tp 1).
# A model or hardware cell may name a file (config.json, hardware .toml), relative to this table's folder.
# The flags the fit estimates (eta_memory, eta_compute, kernel_overhead, step_overhead, comm_overlap) and
# efficiency (the fit is in calibrated mode) are not columns.
#
# Each row fills exactly one measurement column:
#   measured_s    seconds of the row's phase, as `rooflm analyze --json` reports totals.time_s
#                 (one prefill, one decode step, or one whole request for phase e2e)
#   ttft_s        time to first token: a prefill row, or an e2e row (its prefill)
#   tpot_s        time per output token: a decode row (one step at that context), or an e2e row
#   tokens_per_s  output tokens per second: a decode row (batch / step time) or an e2e row (batch·gen_len / time)
#
# A JSON table is a list of objects with the same keys (or {"points": [...]}).
#
# These numbers are illustrative, not a benchmark: benchmarks/make_example_table.py generated them with rooflm
# itself on h100-sxm at flat efficiencies (eta_memory 0.72, eta_compute 0.62, kernel_overhead 3 us, step_overhead
# 0.4 ms; not the catalog's curves), times 3% log-normal noise (seed 7). `rooflm fit` scales the catalog's curves
# toward them (the dense GEMMs' bandwidth by about 0.8) and predicts each held-out model better than the catalog.
"""


def rows() -> list[tuple[Point, str]]:
    out = []
    for model, grid in MODELS.items():
        for phase, batch, length, column in grid:
            prompt, context = (length, length) if phase == "prefill" else (1024, length)
            out.append((Point(len(out), model, "h100-sxm", phase, batch, prompt, context, 256, False, {}), column))
    return out


def table() -> str:
    points = [p for p, _ in rows()]
    seconds = Predictor(points)(TRUTH) * np.exp(np.random.default_rng(SEED).normal(0.0, NOISE, len(points)))
    lines = [",".join(COLUMNS)]
    for (p, column), t in zip(rows(), seconds, strict=True):
        value = p.batch / t if column == "tokens_per_s" else t
        cells = {"model": p.model, "hardware": p.hardware, "phase": p.phase, "batch": str(p.batch),
                 "prompt_len": str(p.prompt_len) if p.phase == "prefill" else "",
                 "context": str(p.context) if p.phase == "decode" else "", column: f"{value:.5g}"}
        lines.append(",".join(cells.get(c, "") for c in COLUMNS))
    return HEADER + "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=Path(__file__).parents[1] / "examples" / "measurements.csv")
    args = parser.parse_args()
    args.output.write_text(table(), encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
