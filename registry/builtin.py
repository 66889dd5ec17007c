"""The embedded default model: the tiny trained model, built locally on first start so that a fresh
install answers chat requests with no network at all."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from registry.local import register_directory
from registry.names import ModelName
from registry.store import Store

log = logging.getLogger("mlx_shim")

BUILTIN_NAME = "mlx-shim-tiny:latest"
BUILTIN_SEED = 0


def ensure_builtin_model(store: Store, build: Callable[[Path, int], Path] | None = None) -> None:
    """Build and register once; afterwards leave the store alone (a user may delete or replace it).
    The marker is written last, so a start interrupted anywhere before it completes the job next time."""
    target = store.home / "builtin" / f"tiny-seed{BUILTIN_SEED}"
    marker = target.with_name(f".registered-{target.name}")
    if marker.exists():
        return
    if not target.is_dir():
        _build(target, build)
    register_directory(store, ModelName.parse(BUILTIN_NAME), target)
    marker.touch()


def _build(target: Path, build: Callable[[Path, int], Path] | None) -> None:
    if build is None:
        from registry.tiny_model import build_tiny_model as build

    log.info("building the embedded model %s (first start only, about a minute)...", BUILTIN_NAME)
    started = time.monotonic()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".build-"))
    try:
        build(staging / "model", BUILTIN_SEED)
        (staging / "model").rename(target)  # atomic: a crash never leaves a half-built model in place
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("built %s in %.1fs", BUILTIN_NAME, time.monotonic() - started)
