"""A web page must not be able to use the local server: CORS and the DNS-rebinding Host guard, as Ollama."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shim.browser_safety import OriginRules, allowed_origins, host_is_local
from tests.conftest import Server, start_server, stop_server


def test_allowed_origin_gets_cors_headers(server: Any) -> None:
    resp = httpx.get(server.url + "/api/tags", headers={"Origin": "http://localhost:3000"})
    assert resp.status_code == 200
    assert resp.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert resp.headers["vary"] == "Origin"


def test_disallowed_origin_is_refused_with_an_empty_body(server: Any) -> None:
    for method, path in (("GET", "/api/tags"), ("POST", "/api/chat"), ("OPTIONS", "/api/chat")):
        resp = httpx.request(method, server.url + path, headers={"Origin": "http://evil.example"})
        assert (resp.status_code, resp.content) == (403, b"")


def test_preflight(server: Any) -> None:
    headers = {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"}
    resp = httpx.options(server.url + "/api/chat", headers=headers)
    assert resp.status_code == 204 and resp.content == b""
    assert resp.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert resp.headers["access-control-allow-methods"] == "GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS"
    allowed = resp.headers["access-control-allow-headers"].split(",")
    assert {"Authorization", "Content-Type", "Openai-Beta", "X-Stainless-Retry-Count"} <= set(allowed)
    assert resp.headers["access-control-max-age"] == "43200"


def test_same_origin_and_no_origin_are_not_cors(server: Any) -> None:
    assert "access-control-allow-origin" not in httpx.get(server.url + "/").headers
    same = httpx.get(server.url + "/", headers={"Origin": server.url})
    assert same.status_code == 200 and "access-control-allow-origin" not in same.headers


def test_rebinding_host_is_refused(server: Any) -> None:
    resp = httpx.get(server.url + "/api/tags", headers={"Host": "evil.example"})
    assert (resp.status_code, resp.content) == (403, b"")
    for host in ("localhost", "localhost:11434", "foo.localhost", "box.local", "db.internal", "10.1.2.3:80"):
        assert httpx.get(server.url + "/api/version", headers={"Host": host}).status_code == 200, host
    assert httpx.options(server.url + "/api/chat", headers={"Host": "localhost"}).status_code == 204


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("http://localhost", True),
        ("https://127.0.0.1:8443", True),
        ("http://0.0.0.0:1", True),
        ("app://anything", True),
        ("vscode-webview://abc", True),
        ("tauri://localhost", True),
        ("http://localhost.evil.example", False),
        ("http://evil.example", False),
        ("chrome-extension://abc", False),
    ],
)
def test_builtin_origins(origin: str, allowed: bool) -> None:
    assert OriginRules(allowed_origins("")).allows(origin) is allowed


def test_configured_origins_with_wildcards() -> None:
    rules = OriginRules(allowed_origins("https://*.example.com,chrome-extension://*"))
    assert rules.allows("https://app.example.com") and rules.allows("chrome-extension://abc")
    assert not rules.allows("https://example.org")
    assert OriginRules(allowed_origins("*")).allows("http://anything")


@pytest.mark.parametrize(
    ("host", "local"),
    [("", True), ("127.0.0.1:11434", True), ("[::1]:11434", True), ("192.168.1.5", True), ("0.0.0.0", True),
     ("LOCALHOST", True), ("x.localhost:80", True), ("8.8.8.8", False), ("evil.example", False),
     ("localhost.evil.example", False)],
)  # fmt: skip
def test_host_rules(host: str, local: bool) -> None:
    assert host_is_local(host) is local


@pytest.fixture
def open_server(tmp_path: Path) -> Iterator[Server]:
    home = tmp_path / "home"
    home.mkdir()
    srv = start_server(home, {"OLLAMA_ORIGINS": "*"})
    yield srv
    stop_server(srv)


def test_ollama_origins_star_allows_every_origin(open_server: Server) -> None:
    resp = httpx.get(open_server.url + "/api/tags", headers={"Origin": "http://evil.example"})
    assert resp.status_code == 200 and resp.headers["access-control-allow-origin"] == "*"
    assert "vary" not in resp.headers


def test_binding_beyond_loopback_is_explicit_and_unguarded(tmp_path: Path) -> None:
    """OLLAMA_HOST=0.0.0.0 is the user's choice: the Host guard is off (as in Ollama) and a warning is logged."""
    home = tmp_path / "home"
    home.mkdir()
    srv = start_server(home, bind_host="0.0.0.0")
    try:
        assert httpx.get(srv.url + "/api/version", headers={"Host": "evil.example"}).status_code == 200
        assert "reachable from other machines" in (home / "server.log").read_text()
    finally:
        stop_server(srv)


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("10.1.2.3", True),
        ("172.16.0.1:11434", True),
        ("172.31.255.255", True),
        ("192.168.1.1", True),
        ("[fc00::1]", True),
        ("[fdff::1]:11434", True),
        ("127.0.0.2", True),
        ("[::1]", True),
        ("0.0.0.0", True),
        ("[::]", True),
        ("[::ffff:10.0.0.1]", True),  # Go reads an IPv4-mapped address as its IPv4 one
        # Go's IsPrivate is RFC 1918 and RFC 4193 only; Python's is_private admits all of these.
        ("169.254.169.254", False),  # link-local: cloud metadata
        ("192.0.2.1", False),  # documentation
        ("198.51.100.7", False),
        ("240.1.2.3", False),  # reserved
        ("172.32.0.1", False),
        ("[fe80::1]", False),
        ("[2001:db8::1]", False),
        ("8.8.8.8", False),
    ],
)
def test_host_guard_admits_the_addresses_go_calls_private(host: str, local: bool) -> None:
    assert host_is_local(host) is local
