"""Load test of the web API on loopback: N requests to POST /api/analyze from C concurrent clients.

Starts `rooflm serve` on a free port (or targets --url), sends a warm-up, then the measured requests,
each a different decode workload (batch 1…1024 × context 128…8192), and reports requests/s, latency
percentiles and errors. Client and server share the machine, so the figures are a floor for the server.

    python benchmarks/load_web.py                       # 2,000 requests, 20 clients
    python benchmarks/load_web.py --requests 5000 --concurrency 50 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx

BATCHES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
CONTEXTS = [128, 512, 2048, 8192]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux), to tell the server's cost from the client's."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def _server() -> Iterator[tuple[str, int]]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", "from rooflm.cli import app; app()", "serve", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/schemes", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("rooflm serve did not start") from None
                time.sleep(0.2)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def workloads(fitting_only: bool) -> list[dict[str, object]]:
    """Every batch × context; with ``fitting_only``, those that fit in the device's memory (a workload that
    does not fit costs more: the API also works out which layouts and dtypes would make it fit)."""
    bodies = [{"model": "llama-3.1-8b", "hardware": "h100-sxm", "batch": b, "context": c}
              for c in CONTEXTS for b in BATCHES]
    if fitting_only:
        import rooflm

        bodies = [w for w in bodies if rooflm.analyze(batch=w["batch"], context=w["context"]).memory.fits]
    return bodies


async def _run(url: str, requests: int, concurrency: int, bodies: list[dict[str, object]]
               ) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    next_index = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal next_index, errors
            while next_index < requests:
                i = next_index
                next_index += 1
                t0 = time.perf_counter()
                try:
                    reply = await client.post("/api/analyze", json=bodies[i % len(bodies)])
                    ok = reply.status_code == 200 and reply.json()["totals"]["time_s"] > 0
                except (httpx.HTTPError, ValueError, KeyError):
                    ok = False
                latencies.append(time.perf_counter() - t0)
                errors += not ok

        for i in range(50):  # warm-up: imports, catalog caches, connection pool
            await client.post("/api/analyze", json=bodies[i % len(bodies)])
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return latencies, errors, elapsed


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--url", help="an already running server (default: start one on a free port)")
    parser.add_argument("--fitting-only", action="store_true", help="only workloads that fit in memory")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()

    bodies = workloads(args.fitting_only)
    server_cpu = float("nan")
    if args.url:
        latencies, errors, elapsed = asyncio.run(_run(args.url, args.requests, args.concurrency, bodies))
    else:
        with _server() as (url, pid):
            cpu0 = _cpu_seconds(pid)
            latencies, errors, elapsed = asyncio.run(_run(url, args.requests, args.concurrency, bodies))
            server_cpu = _cpu_seconds(pid) - cpu0  # includes the 50 warm-up requests
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
        "requests": len(latencies), "concurrency": args.concurrency, "errors": errors,
        "workloads": len(bodies), "fitting_only": args.fitting_only,
        "seconds": round(elapsed, 3), "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1e3 * _percentile(latencies, 0.50), 2), "p90_ms": round(1e3 * _percentile(latencies, 0.90), 2),
        "p99_ms": round(1e3 * _percentile(latencies, 0.99), 2), "max_ms": round(1e3 * max(latencies), 2),
        "mean_ms": round(1e3 * statistics.fmean(latencies), 2),
        "server_cpu_ms_per_request": round(1e3 * server_cpu / (len(latencies) + 50), 2),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['requests']:,} requests, {result['concurrency']} clients, {result['errors']} errors: "
              f"{result['requests_per_s']:,} requests/s; latency p50 {result['p50_ms']} ms, p90 {result['p90_ms']} ms, "
              f"p99 {result['p99_ms']} ms, max {result['max_ms']} ms; server CPU "
              f"{result['server_cpu_ms_per_request']} ms/request ({result['machine']})")
    if errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
