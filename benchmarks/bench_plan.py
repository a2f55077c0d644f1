"""Speed of `rooflm plan` on this machine (run by hand; the figures go in the README and the notes).

    python benchmarks/bench_plan.py [--workers N]

Target: a plan over ≥ 10,000 configurations in under 10 s on a 2-core machine. Each step table (layout ×
scheme × KV dtype) is priced once by rooflm.sweep; its engine limits and loads are one vectorised steady-state call,
and its disaggregated splits × limits × loads one more.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time

import rooflm

CASES = [
    # (label, keywords): Llama-3.1-8B on 8 H100s: 10 layouts × the 4 schemes an H100 runs × 2 KV dtypes = 80 step
    # tables; aggregated only, 10 deployments per scheme × 10 engine limits × 13 loads = 10,400 configurations; with
    # the disaggregated splits (16 more deployments per scheme, read off the same tables: 7 of tp1·dp8's replicas, 3
    # each of tp2·dp4 and pp2·dp4, 1 each of tp4·dp2, tp2·pp2·dp2, pp4·dp2) 26 × 8 × 10 × 13 = 27,040; then
    # lognormal lengths (prefill priced at 256 prompt quantiles per point) over fewer loads.
    ("llama-3.1-8b, 8 × h100-sxm, aggregated only, 1:4096:x2 users",
     {"model": "llama-3.1-8b", "concurrency": [2**i for i in range(13)], "disaggregate": "off"}),
    ("llama-3.1-8b, 8 × h100-sxm, default search, 1:4096:x2 users",
     {"model": "llama-3.1-8b", "concurrency": [2**i for i in range(13)]}),
    ("llama-3.1-8b, 8 × h100-sxm, default search, lognormal lengths",
     {"model": "llama-3.1-8b", "prompt_len": "lognormal:1024:512", "gen_len": "lognormal:256:128"}),
]


def _cpu() -> float:
    """CPU seconds of this process and its finished workers: on a shared machine the wall time says little."""
    return sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{platform.processor() or platform.machine()}, {cores} CPUs, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    for label, kw in CASES:
        t0, c0 = time.perf_counter(), _cpu()
        r = rooflm.plan(hardware="h100-sxm", gpus=8, ttft_slo=0.5, tpot_slo=0.03, workers=args.workers,
                        **kw)  # type: ignore[arg-type]
        dt, cpu = time.perf_counter() - t0, _cpu() - c0
        best = r.best.metrics["output_tokens_per_s_per_gpu"] if r.best else None
        print(f"{label:<64} {r.searched:7,} configurations {dt:6.2f} s wall, {cpu:6.2f} s CPU (all processes)  "
              f"frontier {len(r.pareto)} points, best {best or 0:,.0f} tok/s/GPU")


if __name__ == "__main__":
    main()
