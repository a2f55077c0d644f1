"""How `rooflm serve` runs the app: uvicorn with a bound on connections, a deadline on reading each request, and an
allocator that gives memory back after heavy work.

- **Connections**: at most ``MAX_CONNECTIONS`` open at once; past it uvicorn answers 503 at once (a local page needs a
  handful; the bound keeps a flood of idle sockets from holding the process's file descriptors and memory).
- **Reading a request**: its headers and body must arrive within ``READ_TIMEOUT_S`` of its first byte (or of the
  connection, for the first request); a client that stalls is disconnected. uvicorn times out idle keep-alive
  connections (``KEEP_ALIVE_S``) but not a request that is being sent slowly, which held 900 stalled connections open.
- **Memory**: a sweep of 10,000 points or a serving run allocates tens of MB of numpy arrays per request; glibc keeps
  freed memory in per-thread arenas (up to 8 per core), and 50 parallel clients left the process at ~1 GB resident.
  The server runs with ``ARENAS`` arenas and returns free memory to the system (``malloc_trim``) once a second after
  requests have finished: ~120 MB after the same load, ~50 MB above an idle server (benchmarks/load_web.py
  --heavy). Both are glibc calls, skipped where the C library is another.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import threading
import time
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

READ_TIMEOUT_S = 10.0
KEEP_ALIVE_S = 5
MAX_CONNECTIONS = 64
ARENAS = 2
TRIM_PERIOD_S = 1.0
# glibc's mallopt parameter for the number of arenas (malloc.h: M_ARENA_MAX).
_M_ARENA_MAX = -8


class BoundedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, with a deadline on receiving each request whole (headers and body)."""

    read_timeout_s = READ_TIMEOUT_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:  # a request begins (the first, or the next on a kept-alive connection)
            self._arm()
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE and self.conn.their_state is not h11.SEND_BODY:
            self._disarm()  # received whole (DONE), or the connection is ending

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if getattr(self, "_deadline", None) is None:
            self._deadline = self.loop.call_later(self.read_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if getattr(self, "_deadline", None) is not None:
            self._deadline.cancel()  # type: ignore[union-attr]
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


class _Allocator:
    """glibc's allocator, if this process has it: fewer arenas, and free memory handed back after requests."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("c")
        libc = ctypes.CDLL(name) if name else None
        self.libc = libc if libc is not None and hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
        self.pending = threading.Event()

    def limit_arenas(self) -> None:
        if self.libc is not None:
            self.libc.mallopt(_M_ARENA_MAX, ARENAS)

    def request_done(self) -> None:
        self.pending.set()

    def trim_forever(self) -> None:
        while True:
            self.pending.wait()
            self.pending.clear()
            if self.libc is not None:
                self.libc.malloc_trim(0)
            time.sleep(TRIM_PERIOD_S)


ALLOCATOR = _Allocator()


def run(app: Any, host: str, port: int) -> None:
    """Serve ``app`` on host:port until interrupted, with the bounds above."""
    import uvicorn

    ALLOCATOR.limit_arenas()
    threading.Thread(target=ALLOCATOR.trim_forever, name="rooflm-trim", daemon=True).start()

    async def trimmed(scope: Any, receive: Any, send: Any) -> None:
        try:
            await app(scope, receive, send)
        finally:
            if scope["type"] == "http":
                ALLOCATOR.request_done()

    uvicorn.run(trimmed, host=host, port=port, log_level="warning", http=BoundedH11Protocol,
                limit_concurrency=MAX_CONNECTIONS, timeout_keep_alive=KEEP_ALIVE_S)
