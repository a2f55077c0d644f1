"""What every request passes before the API sees it: the Host it names, and the size and shape of its body.

A browser page on another site can reach a server on localhost by pointing its own DNS name at 127.0.0.1
(DNS rebinding); the Host header then still names that site, so the server answers only the names it was
started for. A body is read whole here, up to a limit, so no endpoint ever holds more than that.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from rooflm.errors import quoted

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The names of this machine's loopback interface: what a browser on this machine sends for a local server.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# The largest request body: a pasted config.json or hardware TOML is a few kilobytes (DeepSeek-V3's is 1.7 kB).
MAX_BODY_BYTES = 1 << 20
# A body up to this many times the limit is read and dropped before the 422, which the client then receives; a
# larger one is refused at once and the connection closed (the client may see a reset instead of the reply).
DRAIN_FACTOR = 16


def host_name(header: str) -> str:
    """'example.com:8000' → 'example.com'; '[::1]:8000' → '::1' (lower case)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


async def _refuse(send: Send, status: int, message: str, loc: str = "header") -> None:
    body = json.dumps({"field": None, "message": message, "detail": [{"loc": [loc], "msg": message,
                                                                     "type": "refused"}]}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """ASGI middleware: refuse a Host outside ``allowed_hosts`` (``"*"`` allows any) with 400, and a body over
    ``max_body`` bytes or nested too deeply to parse with 422, before any endpoint runs."""

    def __init__(self, app: ASGIApp, allowed_hosts: frozenset[str] = LOOPBACK_HOSTS,
                 max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts)
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = host_name(headers.get("host", ""))
        if "*" not in self.allowed_hosts and host not in self.allowed_hosts:
            await _refuse(send, 400, f"this server does not answer for host {quoted(host)}; start it with "
                                     "`rooflm serve --allow-host NAME` to serve that name")
            return
        declared = headers.get("content-length", "0")
        # isdigit alone takes '²', which int() refuses; the header is ASCII digits.
        if not (declared.isascii() and declared.isdigit()) or int(declared) > DRAIN_FACTOR * self.max_body:
            await _refuse(send, 422, f"the request body is over the limit of {self.max_body:,} bytes")
            return
        body = await self._read_body(receive)
        if body is None:
            await _refuse(send, 422, f"the request body is over the limit of {self.max_body:,} bytes")
            return
        problem = _unreadable(body) if body else None
        if problem:
            await _refuse(send, 422, problem, loc="body")
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None when it passes the limit. Past the limit the rest is read and dropped (up to
        DRAIN_FACTOR times the limit), so that the client, still sending, gets the 422 instead of a reset."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks) if size <= self.max_body else None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= self.max_body:
                chunks.append(chunk)
            else:
                chunks.clear()
            if not message.get("more_body", False) or size > DRAIN_FACTOR * self.max_body:
                return b"".join(chunks) if size <= self.max_body else None


def _unreadable(body: bytes) -> str | None:
    """Why the body cannot be read as JSON at all, when FastAPI would answer that with a bare 400 or a 500: nesting
    past Python's recursion limit, text that is not UTF-8, a number past Python's 4,300-digit limit. Invalid JSON is
    the API's to report (a 422 with the position)."""
    try:
        json.loads(body)
    except RecursionError:
        return "the request body nests too deeply to be a request"
    except UnicodeDecodeError:
        return "the request body is not UTF-8 text"
    except json.JSONDecodeError:
        return None
    except ValueError as exc:  # int('9' * 5000): "Exceeds the limit (4300 digits) for integer string conversion"
        return f"the request body cannot be read: {str(exc).split(';')[0]}"
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: the client's disconnect

    return replayed
