"""The one exception hierarchy of the request path: a failure's kind and its exact text, no HTTP status.

Everything the service, the engine and the adapters refuse or fail at is a `ShimError`; each protocol turns
it into its own answer in one place (`ollama.http.guarded`, `openai.http.guarded`, `anthropic.routes`), choosing
the status from the kind as httpx maps its exceptions once. The kinds follow the statuses Ollama answers
with: where Ollama reports bad input as a server error (options, `format`, templates), the kind is INTERNAL,
so clients see exactly what Ollama sends.
"""

from __future__ import annotations

import enum


class Kind(enum.Enum):
    """What went wrong, valued by the HTTP status every protocol answers it with."""

    BAD_INPUT = 400
    NOT_FOUND = 404
    CANCELED = 499  # the client went away (nginx's code, as Ollama logs it); nobody reads the answer
    INTERNAL = 500
    BUSY = 503


class ShimError(Exception):
    """A failure to report to the client: its exact message and its kind."""

    def __init__(self, message: str, kind: Kind = Kind.INTERNAL) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind

    @property
    def status(self) -> int:
        return self.kind.value


def canceled() -> ShimError:
    return ShimError("request canceled", Kind.CANCELED)
