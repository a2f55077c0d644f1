"""`rooflm serve`'s bounds on a real socket: a request sent too slowly is cut off, connections past the bound are
answered 503 at once, and the server keeps serving after both."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

pytest.importorskip("uvicorn")
import uvicorn

from rooflm.web import create_app
from rooflm.web.server import BoundedH11Protocol

READ_TIMEOUT_S = 0.5
CONNECTIONS = 3


class _Quick(BoundedH11Protocol):
    read_timeout_s = READ_TIMEOUT_S


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = int(s.getsockname()[1])
    config = uvicorn.Config(create_app(allowed_hosts=frozenset({"127.0.0.1"})), host="127.0.0.1", port=free,
                            http=_Quick, limit_concurrency=CONNECTIONS, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    yield free
    server.should_exit = True
    thread.join(10)


def _get(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /api/models HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        return _read_all(s)


def _read_all(s: socket.socket) -> bytes:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


def test_a_request_sent_too_slowly_is_cut_off(port: int) -> None:
    """Headers that never end: the server closes the connection once READ_TIMEOUT_S has passed (not before; and
    within a few seconds on a loaded machine), then answers the next client as usual."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        start = time.monotonic()
        s.sendall(b"POST /api/analyze HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n")
        assert _read_all(s) == b""  # closed without an answer
        waited = time.monotonic() - start
    assert READ_TIMEOUT_S * 0.9 <= waited < READ_TIMEOUT_S + 5
    # A body that stops half-way is cut off the same way.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /api/analyze HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n{\"batch\": ")
        assert _read_all(s) == b""
    assert _get(port).startswith(b"HTTP/1.1 200")


def test_connections_past_the_bound_are_refused_at_once(port: int) -> None:
    """CONNECTIONS idle sockets fill the server: the next request is answered 503 straight away (not queued), and
    once the idle ones are cut off (READ_TIMEOUT_S) requests are served again."""
    idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(CONNECTIONS)]
    try:
        time.sleep(0.1)  # let the server accept them
        assert _get(port).startswith(b"HTTP/1.1 503")
    finally:
        for s in idle:
            s.close()
    deadline = time.monotonic() + 10
    while not _get(port).startswith(b"HTTP/1.1 200"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
