"""Load test of the web API on loopback: N requests to POST /api/analyze from C concurrent clients.

Starts `rooflm serve` on a free port (or targets --url), sends a warm-up, then the measured requests,
each a different decode workload (batch 1…1024 × context 128…8192), and reports requests/s, latency
percentiles and errors. Client and server share the machine, so the figures are a floor for the server.

    python benchmarks/load_web.py                       # 2,000 requests, 20 clients
    python benchmarks/load_web.py --requests 5000 --concurrency 50 --json
    python benchmarks/load_web.py --requests 5000 --mix  # the soak: sweeps, mistakes and oversize requests too

With --heavy, the requests are the server's heaviest kinds in turn (the memory soak): a 10,000-point sweep, a
serving run of 4 loads × 1,000 simulated requests, a roofline figure, a mistake and an analysis; the resident memory
is sampled every 50 requests, after the load and after 3 s idle (targets: below 300 MB throughout, back within 50 MB
of the idle server's after the load).

    python benchmarks/load_web.py --requests 400 --concurrency 20 --heavy

With --mix, one request in ten is a 64-point sweep, one in ten a mistake (expects 422) and one in twenty an
oversize request (a 16.7M-point sweep or a 2 MB body; expects 422). The server's resident memory is sampled
every 500 requests, and the time to refuse an oversize request is measured after the soak.
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


def _rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


# (path, body or raw bytes, expected status) of the requests --mix adds among the analyses.
OVERSIZE_SWEEP = ("/api/sweep", {"batch": "1:4096", "context": "1:4096"}, 422)
OVERSIZE_BODY = ("/api/analyze", b'{"model": "' + b"x" * (2 << 20) + b'"}', 422)
SWEEP = ("/api/sweep", {"batch": "1:64", "context": "1024"}, 200)
MISTAKE = ("/api/analyze", {"batch": 0}, 422)
HEAVY = [("/api/sweep", {"batch": "1:2500", "context": "128,1024,4096,8192"}, 200),
         ("/api/serving", {"concurrency": "1,8,64,256", "requests": 1000}, 200),
         ("/api/figure/roofline", {"batch": 512}, 200), MISTAKE]


def request_for(i: int, bodies: list[dict[str, object]], mix: bool, heavy: bool = False) -> tuple[str, object, int]:
    if heavy and i % (len(HEAVY) + 1) < len(HEAVY):
        return HEAVY[i % (len(HEAVY) + 1)]
    if mix and i % 20 == 7:
        return OVERSIZE_SWEEP if i % 40 == 7 else OVERSIZE_BODY
    if mix and i % 10 == 3:
        return SWEEP
    if mix and i % 10 == 5:
        return MISTAKE
    return "/api/analyze", bodies[i % len(bodies)], 200


def workloads(fitting_only: bool) -> list[dict[str, object]]:
    """Every batch × context; with ``fitting_only``, those that fit in the device's memory (a workload that
    does not fit costs more: the API also works out which layouts and dtypes would make it fit)."""
    bodies = [{"model": "llama-3.1-8b", "hardware": "h100-sxm", "batch": b, "context": c}
              for c in CONTEXTS for b in BATCHES]
    if fitting_only:
        import rooflm

        bodies = [w for w in bodies if rooflm.analyze(batch=w["batch"], context=w["context"]).memory.fits]
    return bodies


async def _post(client: httpx.AsyncClient, path: str, body: object) -> httpx.Response:
    if isinstance(body, bytes):
        return await client.post(path, content=body, headers={"content-type": "application/json"})
    return await client.post(path, json=body)


async def _run(url: str, requests: int, concurrency: int, bodies: list[dict[str, object]], mix: bool = False,
               pid: int | None = None, heavy: bool = False) -> tuple[list[float], int, float, list[float]]:
    latencies: list[float] = []
    rss: list[float] = []
    errors = 0
    next_index = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    every = 50 if heavy else 500
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120 if heavy else 30) as client:

        async def worker() -> None:
            nonlocal next_index, errors
            while next_index < requests:
                i = next_index
                next_index += 1
                if pid is not None and i % every == 0:
                    rss.append(_rss_mb(pid))
                path, body, expected = request_for(i, bodies, mix, heavy)
                t0 = time.perf_counter()
                try:
                    reply = await _post(client, path, body)
                    ok = reply.status_code == expected and (expected != 200 or bool(reply.json()))
                except (httpx.HTTPError, ValueError, KeyError):
                    ok = False
                latencies.append(time.perf_counter() - t0)
                errors += not ok

        for i in range(50):  # warm-up: imports, catalog caches, connection pool
            await client.post("/api/analyze", json=bodies[i % len(bodies)])
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
        if pid is not None:
            rss.append(_rss_mb(pid))
            if heavy:  # what the server gives back once the load stops
                await asyncio.sleep(3)
                rss.append(_rss_mb(pid))
    return latencies, errors, elapsed, rss


async def _refusal_ms(url: str, repeats: int = 20) -> dict[str, float]:
    """Median time to refuse each kind of oversize request, one at a time on an idle server."""
    out: dict[str, float] = {}
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for name, (path, body, _) in {"oversize_sweep": OVERSIZE_SWEEP, "oversize_body": OVERSIZE_BODY}.items():
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                reply = await _post(client, path, body)
                times.append(time.perf_counter() - t0)
                assert reply.status_code == 422, reply.text[:200]
            out[f"{name}_refused_ms"] = round(1e3 * statistics.median(times), 2)
    return out


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
    parser.add_argument("--mix", action="store_true", help="add sweeps, mistakes and oversize requests (the soak)")
    parser.add_argument("--heavy", action="store_true", help="the heaviest requests in turn (the memory soak)")
    args = parser.parse_args()

    bodies = workloads(args.fitting_only)
    server_cpu = float("nan")
    rss: list[float] = []
    refusals: dict[str, float] = {}
    if args.url:
        latencies, errors, elapsed, _ = asyncio.run(_run(args.url, args.requests, args.concurrency, bodies, args.mix))
    else:
        with _server() as (url, pid):
            cpu0 = _cpu_seconds(pid)
            latencies, errors, elapsed, rss = asyncio.run(
                _run(url, args.requests, args.concurrency, bodies, args.mix, pid, args.heavy))
            server_cpu = _cpu_seconds(pid) - cpu0  # includes the 50 warm-up requests
            if args.mix:
                refusals = asyncio.run(_refusal_ms(url))
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
        "requests": len(latencies), "concurrency": args.concurrency, "errors": errors,
        "workloads": len(bodies), "fitting_only": args.fitting_only,
        "seconds": round(elapsed, 3), "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1e3 * _percentile(latencies, 0.50), 2), "p90_ms": round(1e3 * _percentile(latencies, 0.90), 2),
        "p99_ms": round(1e3 * _percentile(latencies, 0.99), 2), "max_ms": round(1e3 * max(latencies), 2),
        "mean_ms": round(1e3 * statistics.fmean(latencies), 2),
        "server_cpu_ms_per_request": round(1e3 * server_cpu / (len(latencies) + 50), 2), "mix": args.mix,
        "server_rss_mb": [round(r, 1) for r in rss], **refusals,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['requests']:,} requests, {result['concurrency']} clients, {result['errors']} errors: "
              f"{result['requests_per_s']:,} requests/s; latency p50 {result['p50_ms']} ms, p90 {result['p90_ms']} ms, "
              f"p99 {result['p99_ms']} ms, max {result['max_ms']} ms; server CPU "
              f"{result['server_cpu_ms_per_request']} ms/request ({result['machine']})")
        if rss:
            every = "50 requests, after the load and 3 s later" if args.heavy else "500 requests"
            print(f"server RSS every {every} (MB): {result['server_rss_mb']}")
        for name, ms in refusals.items():
            print(f"{name}: {ms} ms")
    if errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
