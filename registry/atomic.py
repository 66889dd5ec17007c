"""Writing a file so that readers see the old content or the new one, never a torn one.

The temporary name is unique per call: two pulls of one repository may write the same ref at once."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path


def write_bytes(target: Path, data: bytes) -> None:
    """Temp file in the same directory, fsync, rename over the target."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def symlink(target: str, link: Path) -> None:
    """Point `link` at `target`, replacing whatever it was in one step."""
    tmp = link.with_name(f".{link.name}.{uuid.uuid4().hex}.link")
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
