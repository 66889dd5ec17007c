"""The server's limits and timeouts, each an environment setting with a generous default (README: Limits and
timeouts). Ollama sets almost none (Go's net/http with no timeouts, no body limit on /api/*); these keep one slow
or hostile client from holding the server without refusing anything a real client sends."""

from __future__ import annotations

from dataclasses import dataclass, field

from shim.config import env_number, env_switch


def _env_int(name: str, default: int) -> int:
    return int(env_number(name, default))


@dataclass(frozen=True)
class Limits:
    # Seconds running requests may go on after SIGTERM/SIGINT before each ends with "server is shutting down".
    drain_seconds: float = field(default_factory=lambda: env_number("MLX_SHIM_DRAIN_SECONDS", 5.0))
    # The longest wait for the next bytes of a request body (an upload that stalls this long is answered 408).
    body_idle_seconds: float = field(default_factory=lambda: env_number("MLX_SHIM_BODY_IDLE_SECONDS", 60.0))
    # Seconds an idle keep-alive connection, or one still sending its request line and headers, stays open.
    keep_alive_seconds: float = field(default_factory=lambda: env_number("MLX_SHIM_KEEP_ALIVE_SECONDS", 5.0))
    # Bytes of request line and headers (h11's incomplete-event limit): 431 past it.
    max_header_bytes: int = field(default_factory=lambda: _env_int("MLX_SHIM_MAX_HEADER_BYTES", 64 * 1024))
    # Connections the listening socket queues before accept().
    backlog: int = field(default_factory=lambda: _env_int("MLX_SHIM_BACKLOG", 1024))
    # A line per request in the server log (level INFO; 5xx at ERROR); 0 turns it off.
    access_log: bool = field(default_factory=lambda: env_switch("MLX_SHIM_ACCESS_LOG", True))
    # GET /metrics and the once-per-answer observations behind it; 0 turns both off (/metrics is then a 404).
    metrics: bool = field(default_factory=lambda: env_switch("MLX_SHIM_METRICS", True))
