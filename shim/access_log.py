"""One log line a request, in the spirit of Ollama's GIN line (`[GIN] time | status | latency | client | method
"path"`), and the request counters a `/metrics` endpoint can share.

The line's level follows the status: INFO, or ERROR for the server's own errors (5xx); an
error's cause (the body's `error` text) ends the line, so each error is logged once with its cause. A client that
leaves mid-body is not a fault: its line says 499 (nginx's and Ollama's "client closed request") and no traceback.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("mlx_shim.access")

CLIENT_CLOSED = 499
_CAUSE_BYTES = 2048  # an error body is small; a longer one is not read for its cause


@dataclass
class RequestCounters:
    """Totals since start: requests by status and by (method, route, status), in flight now, and seconds spent
    answering. The route is the path's pattern (`/v1/models/{model}`), or `unmatched` for a path no route
    serves, so a client cannot grow the set."""

    by_status: Counter[int] = field(default_factory=Counter)
    by_route: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    in_flight: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


class AccessLog:
    def __init__(self, app: ASGIApp, counters: RequestCounters, enabled: bool = True) -> None:
        self.app = app
        self.counters = counters
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        error_body = bytearray()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and status >= 400 and len(error_body) < _CAUSE_BYTES:
                error_body.extend(message.get("body", b"")[:_CAUSE_BYTES])
            await send(message)

        self.counters.in_flight += 1
        try:
            await self.app(scope, receive, send_status)
        except ClientDisconnect:  # raised by a handler reading the body of a client that left
            status = status or CLIENT_CLOSED
        except Exception:  # a true fault: Starlette's ServerErrorMiddleware answers 500 and logs its traceback
            status = status or 500
            raise
        finally:
            self.counters.in_flight -= 1
            elapsed = time.perf_counter() - started
            self.counters.by_status[status] += 1
            self.counters.by_route[(scope["method"], _route_pattern(scope), status)] += 1
            self.counters.seconds += elapsed
            if self.enabled:
                _log_line(scope, status, elapsed, bytes(error_body))


def _route_pattern(scope: Scope) -> str:
    """The matched route's path with its parameters named again; the router left them in the scope."""
    if "endpoint" not in scope:
        return "unmatched"
    path = scope.get("path", "")
    for name, value in (scope.get("path_params") or {}).items():
        head, sep, tail = path.rpartition(str(value))
        path = f"{head}{{{name}}}{tail}" if sep else path
    return path


def _log_line(scope: Scope, status: int, elapsed: float, error_body: bytes) -> None:
    client = scope.get("client") or ("", 0)
    path = scope.get("path", "")
    quoted = orjson.dumps(path).decode()  # GIN prints the path with %#v: Go-quoted
    line = f"[GIN] | {status:3d} | {go_duration(elapsed):>13} | {client[0]:>15} | {scope['method']:<7} {quoted}"
    cause = "client disconnected" if status == CLIENT_CLOSED else _cause(error_body)
    level = logging.ERROR if status >= 500 else logging.INFO  # a client's error is no fault of the server
    log.log(level, "%s%s", line, f" | {cause}" if cause else "")


def _cause(body: bytes) -> str:
    """The error text of an Ollama, OpenAI or Anthropic error body ('' for any other body)."""
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    return error if isinstance(error, str) else ""


def go_duration(seconds: float) -> str:
    """Go's time.Duration String for a latency, as GIN prints it: 812.4µs, 12.034ms, 1.5s."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f}µs"
    if seconds < 1:
        return f"{seconds * 1e3:.3f}ms"
    return f"{seconds:.3f}s"
