"""A small synchronous client for the server's own HTTP API, used by the `mlx-shim` CLI commands.

It finds the server the way the `ollama` CLI does (OLLAMA_HOST, parsed by shim.config.parse_ollama_host)
and turns every failure into one of two exceptions whose text the CLI prints after `Error: `.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from shim.config import env_bind, parse_ollama_host


class ClientError(Exception):
    """The server answered with an error (its `error` text), or could not be reached."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def server_url(raw: str | None = None) -> str:
    bind = env_bind() if raw is None else parse_ollama_host(raw)
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(bind.host, bind.host)
    host = f"[{host}]" if ":" in host else host
    return f"{bind.scheme}://{host}:{bind.port}"


class Client:
    def __init__(self, url: str | None = None) -> None:
        self.url = url or server_url()
        # trust_env=False: a proxy from the environment must not sit between the CLI and a local server.
        self.http = httpx.Client(base_url=self.url, timeout=httpx.Timeout(None, connect=5), trust_env=False)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """One JSON exchange; None for Ollama's empty 200 bodies (copy, delete)."""
        with self._send(method, path, body) as response:
            response.read()
        return response.json() if response.content else None

    def stream(self, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The objects of an NDJSON answer as they arrive; an `{"error": ...}` line raises."""
        with self._send("POST", path, body) as response:
            for line in response.iter_lines():
                if not line.strip():
                    continue
                obj = json.loads(line)
                if isinstance(obj, dict) and "error" in obj:
                    raise ClientError(str(obj["error"]), response.status_code)
                yield obj

    def has_blob(self, digest: str) -> bool:
        with self._send("HEAD", f"/api/blobs/{digest}", None, allow=(404,)) as response:
            return response.status_code == 200

    def upload_blob(self, digest: str, path: Path, progress: Callable[[int], None] | None = None) -> None:
        def chunks() -> Iterator[bytes]:
            done = 0
            with path.open("rb") as f:
                while chunk := f.read(1 << 20):
                    done += len(chunk)
                    if progress is not None:
                        progress(done)
                    yield chunk

        headers = {"Content-Length": str(path.stat().st_size)}
        with self._send("POST", f"/api/blobs/{digest}", None, content=chunks(), headers=headers) as response:
            response.read()

    @contextlib.contextmanager
    def _send(
        self, method: str, path: str, body: Any, *, allow: tuple[int, ...] = (), **kwargs: Any
    ) -> Iterator[httpx.Response]:
        if body is not None:
            kwargs["json"] = body
        try:
            with self.http.stream(method, path, **kwargs) as response:
                if response.status_code >= 400 and response.status_code not in allow:
                    response.read()
                    raise ClientError(_error_text(response), response.status_code)
                yield response
        except httpx.ConnectError:
            raise ClientError(
                f"could not connect to mlx-shim at {self.url}, is it running? (start it with: mlx-shim serve)"
            ) from None
        except httpx.HTTPError as e:
            raise ClientError(str(e) or type(e).__name__) from None


def _error_text(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"])
    except (ValueError, KeyError, TypeError):
        return response.text.strip() or f"{response.status_code} {response.reason_phrase}"
