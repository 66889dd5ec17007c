"""What keeps a web page from using a developer's local server: Ollama's CORS rules and Host guard.

CORS mirrors gin-contrib/cors as Ollama configures it: built-in local origins plus OLLAMA_ORIGINS (with
`*` wildcards), a disallowed Origin gets 403 with an empty body, a preflight gets 204. The Host guard
mirrors Ollama's allowedHostsMiddleware: while the server listens on loopback, a request whose Host is
not a local name or address (a DNS-rebinding attack) gets 403. Both run before any route, as pure ASGI
so that streamed responses pass through untouched.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_METHODS = "GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS"
_HEADERS = ",".join(
    [
        "Authorization",
        "Content-Type",
        "User-Agent",
        "Accept",
        "X-Requested-With",
        "Openai-Beta",  # Go canonicalises OpenAI-Beta this way
        *(
            f"X-Stainless-{part}"
            for part in (
                "Arch",
                "Async",
                "Custom-Poll-Interval",
                "Helper-Method",
                "Lang",
                "Os",
                "Package-Version",
                "Poll-Helper",
                "Retry-Count",
                "Runtime",
                "Runtime-Version",
                "Timeout",
            )
        ),  # fmt: skip
    ]
)
_MAX_AGE = str(12 * 3600)


def allowed_origins(raw: str) -> list[str]:
    """Ollama's envconfig.AllowedOrigins(): OLLAMA_ORIGINS (`raw`) first, then the built-in local origins."""
    origins = [o for o in raw.split(",") if o] if raw else []
    for host in ("localhost", "127.0.0.1", "0.0.0.0"):
        origins += [f"http://{host}", f"https://{host}", f"http://{host}:*", f"https://{host}:*"]
    return origins + ["app://*", "file://*", "tauri://*", "vscode-webview://*", "vscode-file://*"]


class OriginRules:
    def __init__(self, origins: Iterable[str]) -> None:
        normalized = [o.strip().lower() for o in origins]
        self.allow_all = "*" in normalized
        self.exact = {o for o in normalized if "*" not in o}
        self.wildcards = [tuple(o.split("*", 1)) for o in normalized if "*" in o and o != "*"]

    def allows(self, origin: str) -> bool:
        if self.allow_all or origin in self.exact:
            return True
        return any(origin.startswith(prefix) and origin.endswith(suffix) for prefix, suffix in self.wildcards)


def host_is_local(host_header: str) -> bool:
    """allowedHostsMiddleware: empty, localhost, this machine's name, *.localhost/*.local/*.internal, or
    an address that is loopback, private, unspecified or one of this machine's."""
    host = _strip_port(host_header)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return _allowed_name(host)
    return _go_is_local(address) or _is_own_address(host)


# Go's net.IP.IsPrivate: RFC 1918 and RFC 4193 only. Python's is_private also admits link-local (169.254.169.254,
# a cloud metadata address), documentation (192.0.2.1) and reserved (240.1.2.3) ranges, which Ollama refuses.
_GO_PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))


def _go_is_local(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Go's IsLoopback || IsPrivate || IsUnspecified, which read an IPv4-mapped IPv6 address as its IPv4 one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified or any(address in net for net in _GO_PRIVATE)


def _strip_port(host: str) -> str:
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    name, sep, port = host.rpartition(":")
    return name if sep and port.isdigit() and ":" not in name else host


def _allowed_name(host: str) -> bool:
    host = host.lower()
    if host in ("", "localhost") or host == socket.gethostname().lower():
        return True
    return host.endswith((".localhost", ".local", ".internal"))


def _is_own_address(host: str) -> bool:
    try:
        return host in {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)}
    except OSError:
        return False


class BrowserSafety:
    """ASGI middleware: CORS, then the Host guard (only when bound to loopback), then the app."""

    def __init__(self, app: ASGIApp, *, origins: Iterable[str], guard_hosts: bool) -> None:
        self.app = app
        self.rules = OriginRules(origins)
        self.guard_hosts = guard_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        origin = headers.get("origin", "")
        cors: list[tuple[bytes, bytes]] = []
        if origin and origin not in (f"http://{host}", f"https://{host}"):
            if not self.rules.allows(origin):
                await _empty(send, 403)
                return
            allow_origin = b"*" if self.rules.allow_all else origin.encode("latin-1")
            if scope["method"] == "OPTIONS":
                await _empty(send, 204, _preflight_headers(self.rules.allow_all, allow_origin))
                return
            cors = [(b"access-control-allow-origin", allow_origin)]
            if not self.rules.allow_all:
                cors.append((b"vary", b"Origin"))
        if self.guard_hosts and not host_is_local(host):
            await _empty(send, 403)
            return
        if self.guard_hosts and scope["method"] == "OPTIONS" and not _is_address(host):
            await _empty(send, 204)  # Ollama answers OPTIONS to an allowed host name itself
            return
        if not cors:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *cors]}
            await send(message)

        await self.app(scope, receive, send_with_cors)


def _is_address(host_header: str) -> bool:
    try:
        ipaddress.ip_address(_strip_port(host_header))
    except ValueError:
        return False
    return True


def _preflight_headers(allow_all: bool, allow_origin: bytes) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"access-control-allow-methods", _METHODS.encode()),
        (b"access-control-allow-headers", _HEADERS.encode()),
        (b"access-control-max-age", _MAX_AGE.encode()),
    ]
    if allow_all:
        return [*headers, (b"access-control-allow-origin", b"*")]
    vary = [
        (b"vary", b"Origin"),
        (b"vary", b"Access-Control-Request-Method"),
        (b"vary", b"Access-Control-Request-Headers"),
    ]
    return [*headers, *vary, (b"access-control-allow-origin", allow_origin)]


async def _empty(send: Send, status: int, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers or []})
    await send({"type": "http.response.body", "body": b""})
