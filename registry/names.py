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
        """Ollama's ParseName: split from the right (tag after the last `:` that follows the last `/`, then
        model, namespace, host), fill in the defaults, validate. A separator with nothing on one side of it
        promises a part that is missing, which makes the name invalid (`mm:`, `/nn/mm`). A scheme
        (`https://`) is only dropped in front of a host. Surrounding blanks are trimmed, as modelref does."""
        rest = text.strip()
        tag = namespace = host = ""
        if rest.rfind(":") > rest.rfind("/"):
            rest, tag = _cut_promised(rest, ":")
        rest, model, promised = _cut_last(rest, "/")
        if not promised:
            model = rest
        else:
            rest, namespace, promised = _cut_last(rest, "/")
            if not promised:
                namespace = rest
            else:
                host = rest.split("://", 1)[1] if "://" in rest else rest
        name = cls(host or DEFAULT_HOST, namespace or DEFAULT_NAMESPACE, model, tag or DEFAULT_TAG)
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


# Go's `cmp.Or(part, MissingPart)`: an empty part that a separator promised can never validate.
_MISSING = "!MISSING!"


def _cut_last(text: str, sep: str) -> tuple[str, str, bool]:
    """Ollama's cutPromised: split at the last `sep`; an empty side becomes a part that cannot validate."""
    before, found, after = text.rpartition(sep)
    if not found:
        return text, "", False
    return before or _MISSING, after or _MISSING, True


def _cut_promised(text: str, sep: str) -> tuple[str, str]:
    before, after, _ = _cut_last(text, sep)
    return before, after
