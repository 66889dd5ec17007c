"""Reading an Ollama model library (`OLLAMA_MODELS`), strictly read-only: files are only ever opened for reading.

Ollama's store is `manifests/<host>/<namespace>/<model>/<tag>` (OCI-style JSON: a config blob and layers,
each with mediaType, digest and size) and `blobs/sha256-<hex>`. `plan` decides, per model, what an import
takes from it: the GGUF of its `image.model` layer and the TEMPLATE, SYSTEM, PARAMETERs, LICENSEs and
MESSAGEs of its other layers, or why it is skipped. What each kind of manifest or layer becomes is listed
in `plan`'s docstring and the README's "Importing an Ollama library".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry.names import ModelName
from shim.config import ollama_models_override

_PREFIX = "application/vnd.ollama.image."
MODEL, TEMPLATE, PROMPT, SYSTEM = (_PREFIX + k for k in ("model", "template", "prompt", "system"))
PARAMS, LICENSE, MESSAGES = (_PREFIX + k for k in ("params", "license", "messages"))
PROJECTOR, ADAPTER, TENSOR, DRAFT = (_PREFIX + k for k in ("projector", "adapter", "tensor", "draft"))
_DIGEST = re.compile(r"sha256[:-]([0-9a-f]{64})\Z")
SERVICE_LIBRARY = Path("/usr/share/ollama/.ollama/models")  # the Linux install script's service user


def default_library() -> Path:
    """Ollama's envconfig.Models(): OLLAMA_MODELS, else `~/.ollama/models`; when that does not exist but the
    Linux service's store does, the service's (where `ollama pull` put models on a Linux install)."""
    override = ollama_models_override()
    if override is not None:
        return override
    home = Path.home() / ".ollama" / "models"
    return SERVICE_LIBRARY if not home.is_dir() and SERVICE_LIBRARY.is_dir() else home


@dataclass(frozen=True)
class Layer:
    media_type: str
    digest: str
    size: int


@dataclass(frozen=True)
class LibraryModel:
    name: ModelName
    config: dict[str, Any]
    layers: tuple[Layer, ...]
    problem: str = ""  # a manifest that could not be read: why


@dataclass
class ImportPlan:
    """What importing one model takes: the GGUF, the settings carried over, and what is left behind."""

    gguf: Path
    digest: str
    template: str | None = None
    system: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    license: list[str] = field(default_factory=list)
    messages: list[dict[str, str]] = field(default_factory=list)
    renderer: dict[str, str] = field(default_factory=dict)  # its config's renderer/parser, kept for show
    notes: list[str] = field(default_factory=list)


class Skip(Exception):
    """A model that is not imported, and why (reported; the other models go on)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OllamaLibrary:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or default_library()

    def blob(self, digest: str) -> Path:
        """A digest from a manifest as a path under blobs/ (a malformed one is never joined into a path)."""
        match = _DIGEST.match(digest)
        if not match:
            raise Skip(f"its manifest names a malformed digest {digest!r}")
        return self.root / "blobs" / f"sha256-{match.group(1)}"

    def models(self) -> list[LibraryModel]:
        """Every manifest, by name."""
        manifests = self.root / "manifests"
        found = []
        for path in sorted(manifests.glob("*/*/*/*")) if manifests.is_dir() else []:
            if not path.is_file() or path.name.startswith("."):
                continue
            host, namespace, model = path.parts[-4:-1]
            name = ModelName(host, namespace, model, path.name)
            try:
                name.validate(path.name)
            except ValueError:
                continue
            found.append(self._read(name, path))
        return found

    def find(self, name: ModelName) -> LibraryModel | None:
        """The model of that name, its parts compared case-insensitively as Ollama does."""
        return next((m for m in self.models() if m.name.key() == name.key()), None)

    def _read(self, name: ModelName, path: Path) -> LibraryModel:
        try:
            manifest = json.loads(path.read_bytes())
            layers = tuple(Layer(str(x["mediaType"]), str(x["digest"]), int(x["size"])) for x in manifest["layers"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            return LibraryModel(name, {}, (), problem=f"its manifest cannot be read ({type(e).__name__}: {e})")
        config: dict[str, Any] = {}
        digest = (manifest.get("config") or {}).get("digest") or ""
        if digest:
            try:
                loaded = json.loads(self.blob(digest).read_bytes())
                config = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError, Skip):
                config = {}
        return LibraryModel(name, config, layers)

    def plan(self, model: LibraryModel) -> ImportPlan:
        """What to import, or Skip with the reason:
        - a cloud or remote model (`remote_host`/`remote_model` in its config, no weights here): skipped;
        - a LoRA adapter layer: skipped (the base model alone would answer differently than in Ollama);
        - Ollama's own MLX format (`image.tensor` layers, no GGUF): skipped, not converted (see the README);
        - several model layers (split GGUF): skipped;
        - a blob of an unfinished pull (`-partial`), a missing blob or one of another size: skipped;
        - a vision projector or a draft model: left out and said so; the text model is imported;
        - `renderer`/`parser` (prompts Ollama renders in Go code): the manifest's TEMPLATE is left out, and the
          chat template inside the GGUF is used, as Ollama ignores the TEMPLATE for such a model too."""
        if model.problem:
            raise Skip(model.problem)
        config, kinds = model.config, {layer.media_type for layer in model.layers}
        if config.get("remote_host") or config.get("remote_model"):
            where = config.get("remote_host") or "a remote host"
            raise Skip(f"a cloud model: it runs on {where}, its weights are not on this machine")
        if ADAPTER in kinds:
            raise Skip("it has a LoRA adapter layer, which mlx-shim does not apply")
        weights = [layer for layer in model.layers if layer.media_type == MODEL]
        if not weights:
            if TENSOR in kinds:
                raise Skip("an Ollama MLX-engine model (safetensors tensor layers), which mlx-shim does not import")
            raise Skip("its manifest has no model weights")
        if len(weights) > 1:
            raise Skip(f"its weights are split into {len(weights)} GGUF layers; mlx-shim converts one GGUF per model")
        gguf = self._present(weights[0])
        plan = ImportPlan(gguf, "sha256:" + gguf.name[7:])
        self._carry_settings(model, plan)
        if PROJECTOR in kinds:
            plan.notes.append("its vision projector is not imported: mlx-shim answers text only")
        if DRAFT in kinds:
            plan.notes.append("its draft model (speculative decoding) is not imported")
        if config.get("renderer") or config.get("parser"):
            plan.template = None
            plan.renderer = {k: str(config[k]) for k in ("renderer", "parser") if config.get(k)}
            plan.notes.append(
                f"Ollama renders its prompts in Go code (renderer {config.get('renderer') or '-'}, parser "
                f"{config.get('parser') or '-'}): mlx-shim uses the chat template inside the GGUF instead"
            )
        return plan

    def _present(self, layer: Layer) -> Path:
        path = self.blob(layer.digest)
        if not path.is_file():
            if path.with_name(path.name + "-partial").exists():
                raise Skip(f"its download is unfinished ({path.name}-partial): finish it with `ollama pull`")
            raise Skip(f"blob {layer.digest} is missing from {self.root / 'blobs'}")
        size = path.stat().st_size
        if size != layer.size:
            raise Skip(f"blob {layer.digest} is {size} bytes, its manifest says {layer.size}")
        return path

    def _carry_settings(self, model: LibraryModel, plan: ImportPlan) -> None:
        for layer in model.layers:
            kind = layer.media_type
            if kind not in (TEMPLATE, PROMPT, SYSTEM, PARAMS, LICENSE, MESSAGES):
                continue
            text = self._present(layer).read_bytes().decode("utf-8", errors="replace")
            if kind in (TEMPLATE, PROMPT):
                plan.template = text
            elif kind == SYSTEM:
                plan.system = text
            elif kind == LICENSE:
                plan.license.append(text)
            elif kind == PARAMS:
                plan.parameters = _json_object(text, "params", plan.notes)
            else:
                plan.messages = _messages(text, plan.notes)


def _json_object(text: str, what: str, notes: list[str]) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        notes.append(f"its {what} layer is not a JSON object and is left out")
        return {}
    return value


def _messages(text: str, notes: list[str]) -> list[dict[str, str]]:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        notes.append("its messages layer is not a JSON list of messages and is left out")
        return []
    return [{"role": str(m.get("role", "")), "content": str(m.get("content", ""))} for m in value]
