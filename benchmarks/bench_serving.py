"""Speed of the serving view on this machine (run by hand; the figures go in the README and the notes).

    python benchmarks/bench_serving.py

Target: one simulated run of 10,000 requests under 10 s on a 2-core machine. The step times come from
one grid priced by rooflm.sweep (timed apart: "grid"), then each step is a few numpy reads of it.
"""

from __future__ import annotations

import os
import platform
import time

import rooflm
from rooflm.serving import steps as serving_steps

CASES = [
    # (label, keywords): a closed loop near the engine's limit and a Poisson load below it, varied lengths.
    ("closed loop, 64 users", {"concurrency": [64]}),
    ("closed loop, 1 user", {"concurrency": [1]}),
    ("Poisson, 15 req/s", {"request_rate": [15.0]}),
]


def main() -> None:
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    t0 = time.perf_counter()
    spec = rooflm.load_model("llama-3.1-8b")
    serving_steps.build(spec, "h100-sxm", max_prompt=2000, max_context=2400, exact_prompts=(), max_running=None,
                        max_tokens_per_step=None, kv_blocks=None, mean_context=1300.0, efficiency="calibrated")
    print(f"grid (rooflm.sweep, once per call): {time.perf_counter() - t0:.2f} s")
    for label, load in CASES:
        for method, n in (("simulate", 10_000), ("steady", None)):
            t0 = time.perf_counter()
            r = rooflm.serve_traffic("llama-3.1-8b", "h100-sxm", prompt_len="uniform:200:2000", gen_len="uniform:20:400",
                                     method=method, requests=n, efficiency="calibrated", **load)  # type: ignore[arg-type]
            dt = time.perf_counter() - t0
            p = r.points[0]
            what = f"{n:,} requests" if n else "steady model"
            print(f"{label:<24} {what:<16} {dt:6.2f} s   TTFT {p.ttft_s * 1e3:7.1f} ms  TPOT {p.tpot_s * 1e3:6.2f} ms  "
                  f"{p.output_tokens_per_s:8,.0f} tok/s")


if __name__ == "__main__":
    main()
