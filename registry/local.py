"""Registering a local MLX model directory in place, without the HTTP API: the embedded model at first
start, and tools or tests on the server's own machine. `POST /api/create` (what `mlx-shim create` uses)
copies the files into blobs instead; both share registry/create.py.

FROM names either a directory (relative paths resolve against the Modelfile's folder, as in Ollama), a GGUF
file (converted into an owned MLX directory, registry/gguf_models.py), or a model already in the store, whose
source and settings the new name inherits and may override.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from registry.create import CreateSpec, check_parameters, create_model
from registry.modelfile import ModelfileError, parse_modelfile
from registry.names import ModelName
from registry.store import Store, StoredModel
from shim.errors import ShimError


class LocalModelError(ValueError):
    pass


def create_from_modelfile(
    store: Store, name: ModelName, text: str, base_dir: Path, quantize: str | None = None
) -> StoredModel:
    try:
        modelfile = parse_modelfile(text)
    except (ModelfileError, ValueError) as e:
        raise LocalModelError(str(e)) from e
    path = Path(modelfile.from_).expanduser()
    path = path if path.is_absolute() else base_dir / path
    spec = CreateSpec(
        name,
        from_="" if path.is_dir() or path.is_file() else modelfile.from_,
        directory=path if path.is_dir() else None,
        gguf=path if path.is_file() else None,
        quantize=quantize,
        template=modelfile.template,
        system=modelfile.system,
        license=modelfile.licenses or None,
        messages=modelfile.messages or None,
        renderer=modelfile.renderer,
        parser=modelfile.parser,
        requires=modelfile.requires,
    )
    return _create(store, spec, modelfile.parameters)


def register_directory(store: Store, name: ModelName, directory: Path, **overrides: Any) -> StoredModel:
    return _create(store, CreateSpec(name, directory=directory, **overrides), None)


def register_gguf(store: Store, name: ModelName, gguf: Path, **overrides: Any) -> StoredModel:
    """`FROM <gguf>`: converted into an owned directory under models/, freed with the last name that uses it."""
    return _create(store, CreateSpec(name, gguf=gguf, **overrides), None)


def _create(store: Store, spec: CreateSpec, parameters: dict[str, Any] | None) -> StoredModel:
    try:
        spec.parameters = check_parameters(parameters) if parameters else None
        for _ in create_model(store, spec):
            pass
    except ShimError as e:  # CreateError and the quantize/GGUF refusals it no longer re-raises
        raise LocalModelError(e.message) from None
    stored = store.get(spec.name)
    assert stored is not None
    return stored
