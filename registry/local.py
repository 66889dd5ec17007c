"""Registering a local MLX model directory under an Ollama name (`mlx-shim create NAME -f Modelfile`).

FROM names either a directory (relative paths resolve against the Modelfile's folder, as in Ollama) or a
model already in the store, whose source and settings the new name inherits and may override.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from registry.model_dir import ModelDirInfo, NotAModelDir
from registry.modelfile import ModelfileError, parse_modelfile
from registry.names import InvalidName, ModelName
from registry.store import Store, StoredModel


class LocalModelError(ValueError):
    pass


def create_from_modelfile(store: Store, name: ModelName, text: str, base_dir: Path) -> StoredModel:
    try:
        modelfile = parse_modelfile(text)
    except (ModelfileError, ValueError) as e:
        raise LocalModelError(str(e)) from e
    manifest = _from(store, modelfile.from_, base_dir)
    if modelfile.system is not None:
        manifest["system"] = modelfile.system
    if modelfile.template is not None:
        _check_template(modelfile.template)
        manifest["template"] = modelfile.template
    if modelfile.parameters:
        manifest["parameters"] = {**manifest.get("parameters", {}), **modelfile.parameters}
    if modelfile.licenses:
        manifest["license"] = modelfile.licenses
    if modelfile.messages:
        manifest["messages"] = modelfile.messages
    return store.put(name, manifest)


def register_directory(store: Store, name: ModelName, directory: Path, **overrides: Any) -> StoredModel:
    _check_model_dir(directory)
    return store.put(name, {"source": {"type": "local", "path": str(directory.resolve())}, **overrides})


def _from(store: Store, source: str, base_dir: Path) -> dict[str, Any]:
    path = Path(source).expanduser()
    path = path if path.is_absolute() else base_dir / path
    if path.is_dir():
        _check_model_dir(path)
        return {"source": {"type": "local", "path": str(path.resolve())}}
    try:
        parent = store.get(ModelName.parse(source))
    except InvalidName:
        parent = None
    if parent is None:
        raise LocalModelError(f"FROM {source!r} is neither a model directory nor a model in the store")
    return {k: v for k, v in parent.manifest.items() if k != "schemaVersion"}


def _check_model_dir(path: Path) -> None:
    try:
        ModelDirInfo.read(path)
    except (NotAModelDir, OSError, ValueError) as e:
        raise LocalModelError(f"{path} is not an MLX model directory: {e}") from e


def _check_template(text: str) -> None:
    from shim.gotemplate import Template, TemplateError

    try:
        Template.parse(text)
    except TemplateError as e:
        raise LocalModelError(f"TEMPLATE: {e}") from e
