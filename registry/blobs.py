"""Content-addressed blobs under `MLX_SHIM_HOME/blobs/sha256-<hex>`, as Ollama keeps them.

A client uploads each file of a model (`POST /api/blobs/sha256:<hex>`) before `POST /api/create` names
them. The digest is computed while the bytes stream in, into a temporary file that is fsynced and renamed
only when the digest matches: a blob on disk always holds exactly the bytes its name promises.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO

_DIGEST = re.compile(r"sha256[:-][0-9a-fA-F]{64}\Z")


class InvalidDigest(ValueError):
    """Ollama's manifest.ErrInvalidDigestFormat."""

    def __init__(self) -> None:
        super().__init__("invalid digest format")


class DigestMismatch(ValueError):
    def __init__(self, expected: str, got: str) -> None:
        super().__init__(f'digest mismatch, expected "{expected}", got "{got}"')


class Blobs:
    def __init__(self, home: Path) -> None:
        self.root = home / "blobs"

    @staticmethod
    def check(digest: str) -> None:
        """Ollama's digest format, `sha256:<hex>` or `sha256-<hex>`; InvalidDigest for anything else."""
        if not _DIGEST.match(digest):
            raise InvalidDigest

    def path(self, digest: str) -> Path:
        self.check(digest)
        return self.root / ("sha256-" + digest[7:])

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    async def write(self, digest: str, chunks: AsyncIterator[bytes]) -> bool:
        """Store the streamed bytes as `digest`; True when it was new, False when it was already there.
        Ollama compares the computed `sha256:<hex>` with the digest text as given, so do we."""
        target = self.path(digest)
        if target.is_file():
            return False
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        try:
            hasher = hashlib.sha256()
            with os.fdopen(fd, "wb") as f:
                async for chunk in chunks:  # hashing gigabytes would stall the event loop: a worker does it
                    await asyncio.to_thread(_absorb, hasher, f, chunk)
                await asyncio.to_thread(_flush, f)
            got = "sha256:" + hasher.hexdigest()
            if got != digest:
                raise DigestMismatch(digest, got)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return True


def _absorb(hasher: Any, f: BinaryIO, chunk: bytes) -> None:
    hasher.update(chunk)
    f.write(chunk)


def _flush(f: BinaryIO) -> None:
    f.flush()
    os.fsync(f.fileno())
