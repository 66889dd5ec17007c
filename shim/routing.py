"""Routes with gin's method semantics: a route answers exactly the methods it registers.

Starlette adds HEAD to every GET route; gin does not, so Ollama answers `HEAD /api/ps` with 405. And gin
lists a path's other methods in `Allow` in the order its method trees were first registered (HEAD, GET,
POST, DELETE in Ollama's route table), where a Python set has no stable order across processes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from starlette.routing import Route

GIN_METHOD_ORDER = ("HEAD", "GET", "POST", "DELETE")


def exact_route(path: str, endpoint: Callable[..., Any], methods: Collection[str]) -> Route:
    route = Route(path, endpoint, methods=methods)
    route.methods = {m.upper() for m in methods}
    return route


def gin_allow(allow: str) -> str:
    """An `Allow` header value in gin's order."""
    methods = [m.strip() for m in allow.split(",") if m.strip()]
    known = [m for m in GIN_METHOD_ORDER if m in methods]
    return ", ".join(known + [m for m in methods if m not in GIN_METHOD_ORDER])
