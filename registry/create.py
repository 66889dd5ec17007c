"""`POST /api/create`: a new name from an existing model (`from`) or from uploaded blobs (`files`).

A model created from `files` is assembled into `MLX_SHIM_HOME/models/<id>/`, one hard link per blob under
the file's own name, where `<id>` is the sha256 of the file map: the same files give the same directory,
shared by every name that uses it. Its manifest marks the directory as owned by mlx-shim, so deleting the
last name that uses it releases the directory and its blobs (Store.release_if_unused); a `FROM` directory
registered in place stays the user's.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from registry.blobs import Blobs, InvalidDigest
from registry.model_dir import ENCODER_ARCHITECTURES, ModelDirInfo, NotAModelDir
from registry.names import InvalidName, ModelName
from registry.parameters import OPTION_TYPES, coerce_parameter
from registry.store import Store, owned_id

# Any one of these lets mlx-lm (through transformers' AutoTokenizer) build the tokenizer.
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")


class CreateError(ValueError):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class CreateSpec:
    """The fields of Ollama's CreateRequest that mlx-shim honours, already type-checked."""

    name: ModelName
    from_: str = ""
    files: dict[str, str] = field(default_factory=dict)
    directory: Path | None = None  # registered in place (local Modelfiles, the builtin model): the user's
    template: str | None = None
    system: str | None = None
    license: list[str] | None = None
    parameters: dict[str, Any] | None = None
    messages: list[dict[str, Any]] | None = None


def check_files(files: dict[str, Any]) -> None:
    """Ollama's validateCreateFiles: relative slash-separated paths, well-formed digests."""
    for path, digest in files.items():
        if not valid_relative_path(path):
            raise CreateError("file path must be relative")
        if not isinstance(digest, str) or not digest:
            raise CreateError("invalid digest format")
        try:
            Blobs.check(digest)
        except InvalidDigest:
            raise CreateError(f"invalid digest for {path}: invalid digest format") from None


def valid_relative_path(path: str) -> bool:
    """Go's fs.ValidPath plus Ollama's extra rule (no `\\` or `:`), and never `.`."""
    if path in ("", ".") or any(c in path for c in "\\:") or path.startswith("/") or path.endswith("/"):
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


def check_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """PARAMETER values arrive typed (the Go client's FormatParams) or as strings; both are checked here,
    so a bad value is refused at create time instead of failing every later request."""
    out: dict[str, Any] = {}
    for name, value in parameters.items():
        if value is None:
            continue
        kind = OPTION_TYPES.get(name)
        if kind is None:
            raise CreateError(f"unknown parameter '{name}'")
        if name == "stop":
            values = value if isinstance(value, list) else [value]
            if not all(isinstance(v, str) for v in values):
                raise CreateError("stop must be a string or a list of strings")
            out[name] = list(values)
            continue
        try:
            out[name] = coerce_parameter(name, value if isinstance(value, str) else json.dumps(value))[1]
        except ValueError as e:
            raise CreateError(str(e)) from None
    return out


def create_model(store: Store, spec: CreateSpec) -> Iterator[str]:
    """Yield Ollama's progress statuses while creating; raise CreateError with Ollama's status and text.
    Holds the store's lock throughout: a delete running beside it would otherwise release the folder and
    blobs (or the FROM model's) that the new name is about to use."""
    with store.changing:
        yield from _create(store, spec)


def _create(store: Store, spec: CreateSpec) -> Iterator[str]:
    if spec.files and spec.from_:
        raise CreateError("safetensors imports do not support FROM model overlays")
    if spec.template is not None:
        _check_template(spec.template)
    manifest: dict[str, Any]
    if spec.directory is not None:
        check_loadable(spec.directory)
        manifest = {"source": {"type": "local", "path": str(spec.directory.resolve())}}
    elif spec.files:
        directory = yield from _assemble(store, spec.files)
        manifest = {"source": {"type": "local", "path": str(directory), "owned": True}}
        manifest["files"] = dict(sorted(spec.files.items()))
    elif spec.from_:
        manifest = _inherit(store, spec.from_)
    else:
        raise CreateError("neither 'from' or 'files' was specified")
    if spec.template is not None:
        manifest["template"] = spec.template
    if spec.system is not None:
        manifest["system"] = spec.system
    if spec.license is not None:
        manifest["license"] = spec.license
    if spec.parameters:
        manifest["parameters"] = {**manifest.get("parameters", {}), **spec.parameters}
    if spec.messages is not None:
        manifest["messages"] = [{"role": m.get("role", ""), "content": m.get("content", "")} for m in spec.messages]
    yield "writing manifest"
    previous = store.get(spec.name)
    store.put(spec.name, manifest)
    if previous is not None:
        from registry.hf_pull import release_replaced  # hf_pull imports this module

        release_replaced(store, previous)


def _inherit(store: Store, source: str) -> dict[str, Any]:
    try:
        parent = store.get(ModelName.parse(source))
    except InvalidName:
        raise CreateError("invalid model name") from None
    if parent is None:
        raise CreateError(f"model '{source}' not found", 404)
    return {k: v for k, v in parent.manifest.items() if k != "schemaVersion"}


def _assemble(store: Store, files: dict[str, str]) -> Generator[str, None, Path]:
    """Link the blobs into the model directory (a generator: it reports each blob it uses)."""
    blobs = Blobs(store.home)
    sources = {}
    for path, digest in sorted(files.items()):
        blob = blobs.path(digest)
        if not blob.is_file():
            raise CreateError(f"blob not found for {path} (digest {digest})")
        sources[path] = blob
    model_id = hashlib.sha256(json.dumps(dict(sorted(files.items()))).encode()).hexdigest()
    target = store.home / "models" / model_id
    for _, digest in sorted(files.items()):
        yield f"using existing layer sha256:{digest[7:]}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".assemble-"))
    try:
        for path, blob in sources.items():
            dest = staging.joinpath(*PurePosixPath(path).parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(blob, dest)
            except FileExistsError:  # a case-insensitive filesystem (macOS) made two names one file: copying
                # onto it would write through its hard link into the other file's blob
                raise CreateError(f"file path {path} names the same file as another one on this filesystem") from None
            except OSError:  # another filesystem: a copy costs space but works
                shutil.copyfile(blob, dest)
        check_loadable(staging)
        try:
            staging.rename(target)  # atomic: a directory under models/ is always complete
        except OSError:
            if not target.is_dir():
                raise
            shutil.rmtree(staging, ignore_errors=True)  # a create of the same files got there first
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def check_loadable(directory: Path) -> ModelDirInfo:
    """What mlx-lm needs to load a model: a config.json of a known architecture, safetensors weights whose
    headers parse, and tokenizer files. Checked before the name exists, so a bad upload never becomes a
    model that fails on its first request."""
    try:
        info = ModelDirInfo.read(directory)
    except (NotAModelDir, OSError, ValueError, KeyError, TypeError) as e:
        raise CreateError(f"the files are not an MLX model: {_reason(e, directory)}") from None
    if not any((directory / name).is_file() for name in _TOKENIZER_FILES):
        raise CreateError(f"the files are not an MLX model: no tokenizer ({', '.join(_TOKENIZER_FILES)})")
    if info.architecture in ENCODER_ARCHITECTURES:
        return info  # an embedding model: shim/embedding runs it, not mlx-lm
    from mlx_lm.utils import _get_classes

    try:
        _get_classes(info.config)
    except (ValueError, KeyError) as e:
        raise CreateError(f"the files are not an MLX model: {e}") from None
    return info


def _reason(error: Exception, directory: Path) -> str:
    text = str(error).replace(f"{directory} has ", "").replace(str(directory), "the model")
    return text or type(error).__name__


def _check_template(text: str) -> None:
    from shim.gotemplate import Template, TemplateError

    try:
        Template.parse(text)
    except TemplateError as e:
        raise CreateError(f"template error: {e}") from None


def prune_unreferenced(store: Store) -> list[Path]:
    """At server start, as Ollama prunes unused layers (unless OLLAMA_NOPRUNE is set): blobs no manifest
    lists, assembled model directories no manifest points at, and temporaries an interrupted upload or
    create left behind. Returns what it removed."""
    if os.environ.get("OLLAMA_NOPRUNE"):
        return []
    manifests = [m.manifest for m in store.list()]
    used_blobs = {str(d)[7:] for m in manifests for d in (m.get("files") or {}).values()}
    used_dirs = {owned_id(m) for m in manifests}
    removed = []
    blobs_dir, models_dir = store.home / "blobs", store.home / "models"
    for path in sorted(blobs_dir.iterdir()) if blobs_dir.is_dir() else []:
        if path.name.startswith(".upload-") or (path.name.startswith("sha256-") and path.name[7:] not in used_blobs):
            path.unlink(missing_ok=True)
            removed.append(path)
    for path in sorted(models_dir.iterdir()) if models_dir.is_dir() else []:
        # Only what _assemble makes (64-hex ids and its staging folders): other stores may share models/.
        ours = path.name.startswith(".assemble-") or re.fullmatch(r"[0-9a-f]{64}", path.name)
        if ours and path.name not in used_dirs:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
