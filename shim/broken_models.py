"""A model whose files cannot be read is left out of listings, and said once in the log rather than on every
`/api/tags` a client polls (the error is the same until the files change, which changes the digest)."""

from __future__ import annotations

import logging

log = logging.getLogger("mlx_shim")

_reported: set[tuple[str, str]] = set()


def skip_broken(name: str, digest: str, error: Exception) -> None:
    """Log, once per model name and digest, why the model is not listed."""
    if (name, digest) in _reported:
        return
    _reported.add((name, digest))
    log.warning("model %s is not listed: %s", name, error)
