"""`rooflm serving` (calibrated) against published fixed-concurrency measurements of a real engine.

    python benchmarks/serving_vs_published.py           # table: measured, predicted and error per point
    python benchmarks/serving_vs_published.py --json

The measurements (``benchmarks/data/published_serving.csv``) are closed-loop runs at a fixed
concurrency (``vllm bench serve --max-concurrency C --request-rate inf``), each row one concurrency, with
its source. Each is simulated by ``rooflm.serve_traffic(..., concurrency=[C], method="simulate",
view="benchmark")`` with the run's lengths and engine settings: all users start at once, as the benchmark
client starts them, over 1,000 prompts (the client's default `--num-prompts`; the rows do not state theirs).
Medians are compared with medians (rooflm's TPOT is the engine's inter-token latency when every step emits
one token). Error = predicted / measured − 1. These rows check the model; nothing is fitted to them.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path

import rooflm

DATA = Path(__file__).parent / "data"
# Engine settings of the published runs that differ from rooflm's defaults, by row id prefix.
SETTINGS = {"l4-q05": {"gpu_memory_utilization": 0.6}}
# vllm bench serve's default --num-prompts.
NUM_PROMPTS = 1000
METRICS = (("ttft_p50_ms", "ttft_p50_s", 1e3), ("itl_p50_ms", "tpot_p50_s", 1e3),
           ("output_tokens_per_s", "output_tokens_per_s", 1.0), ("e2e_p50_ms", "e2e_latency_p50_s", 1e3))


def _model(name: str) -> str | Path:
    local = DATA / name / "config.json"
    return local if local.is_file() else name


def compare() -> list[dict[str, object]]:
    rows = list(csv.DictReader((DATA / "published_serving.csv").open()))
    out: list[dict[str, object]] = []
    for row in rows:
        extra = next((v for k, v in SETTINGS.items() if row["id"].startswith(k)), {})
        result = rooflm.serve_traffic(_model(row["model"]), row["hardware"], prompt_len=int(row["prompt_len"]),
                                      gen_len=int(row["gen_len"]), concurrency=[int(row["concurrency"])],
                                      method="simulate", view="benchmark", requests=NUM_PROMPTS,
                                      efficiency="calibrated", **extra)
        point = result.points[0].to_json_dict()
        values: dict[str, object] = {"id": row["id"], "concurrency": int(row["concurrency"])}
        for measured_key, predicted_key, scale in METRICS:
            measured = float(row[measured_key])
            predicted = float(point[predicted_key]) * scale  # type: ignore[arg-type]
            values[measured_key] = {"measured": measured, "predicted": predicted, "error": predicted / measured - 1}
        out.append(values)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = compare()
    if args.json:
        print(json.dumps({"points": rows}, indent=1))
        return
    head = "".join(f"{m:>30}" for m, _, _ in METRICS)
    print(f"{'id':<12}{head}")
    for r in rows:
        cells = "".join(f"{r[m]['measured']:>10.1f} → {r[m]['predicted']:>7.1f} {r[m]['error']:>+7.0%}"  # type: ignore[index]
                        for m, _, _ in METRICS)
        print(f"{r['id']:<12}{cells}")
    for m, _, _ in METRICS:
        errors = [abs(r[m]["error"]) for r in rows]  # type: ignore[index]
        print(f"{m}: median |error| {statistics.median(errors):.0%}, worst {max(errors):.0%}")


if __name__ == "__main__":
    main()
