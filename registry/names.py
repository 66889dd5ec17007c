"""Ollama model names: `[scheme://][host/][namespace/]model[:tag]`, parsed and validated as Ollama does.

Ollama keys everything on the fully qualified name (`registry.ollama.ai/library/tiny:latest`) but shows
the shortest unambiguous form (`tiny:latest`); error messages use one or the other, so both are kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
_NAMESPACE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*\Z")
_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]*\Z")


class InvalidName(ValueError):
    """The name does not follow Ollama's grammar (Ollama answers `invalid model name`)."""


@dataclass(frozen=True)
class ModelName:
    host: str
    namespace: str
    model: str
    tag: str

    @classmethod
    def parse(cls, text: str) -> ModelName:
        """Parse and fill in defaults; raise InvalidName when a part is empty or malformed."""
        rest = text.strip()
        if "://" in rest:
            rest = rest.split("://", 1)[1]
        tag = DEFAULT_TAG
        colon, slash = rest.rfind(":"), rest.rfind("/")
        if colon > slash:
            rest, tag = rest[:colon], rest[colon + 1 :]
        parts = rest.split("/")
        if len(parts) > 3:
            raise InvalidName(text)
        model = parts[-1]
        namespace = parts[-2] if len(parts) >= 2 else DEFAULT_NAMESPACE
        host = parts[-3] if len(parts) == 3 else DEFAULT_HOST
        name = cls(host, namespace, model, tag)
        name.validate(text)
        return name

    def validate(self, original: str) -> None:
        ok = (
            0 < len(self.host) <= 350
            and _HOST.match(self.host)
            and 0 < len(self.namespace) <= 80
            and _NAMESPACE.match(self.namespace)
            and 0 < len(self.model) <= 80
            and _PART.match(self.model)
            and 0 < len(self.tag) <= 80
            and _PART.match(self.tag)
        )
        if not ok:
            raise InvalidName(original)

    @property
    def full(self) -> str:
        """`registry.ollama.ai/library/tiny:latest`: the form Ollama's capability errors print."""
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    @property
    def display(self) -> str:
        """Ollama's DisplayShortest: drop default host and namespace, always keep the tag."""
        if self.host.lower() != DEFAULT_HOST:
            return self.full
        if self.namespace.lower() != DEFAULT_NAMESPACE:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.model}:{self.tag}"

    def key(self) -> tuple[str, str, str, str]:
        """Case-insensitive identity: Ollama finds `TINY:LATEST` when `tiny:latest` is stored."""
        return (self.host.lower(), self.namespace.lower(), self.model.lower(), self.tag.lower())
