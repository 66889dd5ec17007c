"""`POST /api/create`: a new name from an existing model (`from`) or from uploaded blobs (`files`).

A model created from `files` is assembled into `MLX_SHIM_HOME/models/<id>/`, one hard link per blob under
the file's own name, where `<id>` is the sha256 of the file map: the same files give the same directory,
shared by every name that uses it. Its manifest marks the directory as owned by mlx-shim, so deleting the
last name that uses it releases the directory and its blobs (Store.release_if_unused); a `FROM` directory
registered in place stays the user's.

A GGUF among the files (or a Modelfile's `FROM ./x.gguf`) is converted to MLX instead, into the owned
directory its digest and `quantize` name (registry/gguf_models.py); the manifest keeps the GGUF in `files`,
so the startup prune keeps the blob and a create of the same file again skips the upload and the conversion.
`quantize` on an MLX source makes an owned, quantized copy with mlx-lm (registry/quantize.py). Both take
time, so they run before the store's lock is taken (registry/owned.py builds each directory once).
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
from registry.gguf_models import ONLY_GGUF, GGUFSource, convert_to_owned, find_gguf, is_gguf_file
from registry.model_dir import ModelDirInfo, NotAModelDir, architecture_refusal
from registry.names import InvalidName, ModelName
from registry.owned import STAGING_PREFIX, build_owned, directory_fingerprint, file_digest, model_id, with_progress
from registry.parameters import OPTION_TYPES, coerce_parameter
from registry.quantize import Quantization, quantize_mlx_model, unquantized_level
from registry.release import release_replaced
from registry.store import Store, owned_id
from shim.config import no_prune
from shim.errors import Kind, ShimError

# Any one of these lets mlx-lm (through transformers' AutoTokenizer) build the tokenizer.
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")


class CreateError(ShimError, ValueError):
    """A create Ollama refuses: bad input unless it says otherwise (a missing blob is a 404)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message, Kind(status))


@dataclass
class CreateSpec:
    """The fields of Ollama's CreateRequest that mlx-shim honours, already type-checked."""

    name: ModelName
    from_: str = ""
    files: dict[str, str] = field(default_factory=dict)
    directory: Path | None = None  # registered in place (local Modelfiles, the builtin model): the user's
    gguf: Path | None = None  # a local GGUF file (a Modelfile's FROM ./x.gguf), converted into an owned directory
    quantize: str | None = None
    template: str | None = None
    system: str | None = None
    license: list[str] | None = None
    parameters: dict[str, Any] | None = None
    messages: list[dict[str, Any]] | None = None
    renderer: str | None = None  # Ollama's Go prompt code: kept and shown; the model's chat template is used
    parser: str | None = None
    requires: str | None = None  # the least Ollama version the model asks for


# Create's text fields end up in the manifest, which every lookup of the name reads: Ollama bounds none of them,
# these bounds are far above any real template, system prompt, license or seeded conversation.
MAX_TEXT_BYTES = 1 << 20
MAX_MESSAGES = 10_000
MAX_MESSAGES_BYTES = 8 << 20


def check_field_sizes(req: dict[str, Any]) -> None:
    """Refuse (400) a template, system prompt or license over MAX_TEXT_BYTES, or messages over their bounds."""
    for key in ("template", "system", "license"):
        value = req.get(key)
        texts = value if isinstance(value, list) else [value]
        size = sum(len(t.encode()) for t in texts if isinstance(t, str))
        if size > MAX_TEXT_BYTES:
            raise CreateError(f"{key} is {size} bytes; at most {MAX_TEXT_BYTES} are allowed")
    messages = req.get("messages") or []
    if len(messages) > MAX_MESSAGES:
        raise CreateError(f"{len(messages)} messages; at most {MAX_MESSAGES} are allowed")
    size = sum(len(str(m.get("content", "")).encode()) for m in messages if isinstance(m, dict))
    if size > MAX_MESSAGES_BYTES:
        raise CreateError(f"messages are {size} bytes; at most {MAX_MESSAGES_BYTES} are allowed")


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
    A conversion or quantization runs first, outside the store's lock; the rest holds the lock: a delete
    running beside it would otherwise release the folder and blobs (or the FROM model's) that the new name is
    about to use."""
    if spec.files and spec.from_:
        raise CreateError("safetensors imports do not support FROM model overlays")
    if spec.template is not None:
        _check_template(spec.template)
    quantization = _quantization(spec.quantize)
    if spec.renderer or spec.parser:  # kept (show prints them back), but no Go code renders the prompts here
        yield (f"note: renderer {spec.renderer or '-'} and parser {spec.parser or '-'} are Ollama's Go code; "
               "mlx-shim renders with the model's template")  # fmt: skip
    prepared = yield from _prepare(store, spec, quantization)
    with store.changing:
        if prepared is not None and not prepared.is_dir():  # a delete released it meanwhile: build it again
            prepared = yield from _prepare(store, spec, quantization)
        yield from _create(store, spec, prepared)


def _quantization(requested: str | None) -> Quantization | None:
    return Quantization.parse(requested) if requested else None


def _prepare(store: Store, spec: CreateSpec, quantization: Quantization | None) -> Generator[str, None, Path | None]:
    """The owned directory a GGUF converts into, or a quantized copy of an MLX source; None when the model
    needs neither (its directory is assembled or inherited under the lock)."""
    gguf = _gguf_source(store, spec)
    if gguf is not None:
        return (yield from _convert(store, gguf, quantization))
    if quantization is not None:
        if not (spec.files or spec.directory or spec.from_):
            raise CreateError("neither 'from' or 'files' was specified")
        return (yield from _quantize(store, spec, quantization))
    return None


def _gguf_source(store: Store, spec: CreateSpec) -> GGUFSource | None:
    if spec.gguf is not None:
        if not is_gguf_file(spec.gguf):
            raise CreateError(ONLY_GGUF)
        return GGUFSource(spec.gguf, file_digest(spec.gguf), spec.gguf.name)
    if not spec.files:
        return None
    blobs = Blobs(store.home)
    _check_blobs(blobs, spec.files)
    return find_gguf(spec.files, blobs)


def _convert(store: Store, gguf: GGUFSource, quantization: Quantization | None) -> Generator[str, None, Path]:
    if quantization is not None and not quantization.is_gguf_type:
        raise CreateError(quantization.gguf_refusal())
    yield "parsing GGUF"  # then the conversion's statuses, then the layer: Ollama's order for a GGUF
    directory, _ = yield from with_progress(
        lambda progress: convert_to_owned(store.home / "models", gguf, quantization, progress, check_loadable)
    )
    yield f"using existing layer sha256:{gguf.digest[7:]}"
    return directory


def _quantize(store: Store, spec: CreateSpec, quantization: Quantization) -> Generator[str, None, Path]:
    """An owned copy of the MLX source (uploaded files, a directory, or the FROM model) quantized by mlx-lm."""
    models = store.home / "models"
    if spec.files:
        blobs = Blobs(store.home)
        _check_blobs(blobs, spec.files)
        staging = Path(tempfile.mkdtemp(dir=_mkdir(models), prefix=STAGING_PREFIX))
        source, identity = staging / "source", model_id(*sorted(f"{k}={v}" for k, v in spec.files.items()))
        _link_blobs(blobs, spec.files, source)
    else:
        staging = None
        source = spec.directory if spec.directory is not None else _inherited_dir(store, spec.from_)
        identity = directory_fingerprint(source)
    try:
        level = unquantized_level(check_loadable(source).quantization_level)
        if level is None:
            raise CreateError("quantization is only supported for F16, BF16 and F32 models")
        yield quantization.describe(level)

        def build(target: Path) -> None:
            quantize_mlx_model(source, target, quantization)

        try:
            directory, _ = build_owned(models, model_id("quantize", identity, quantization.name), build, check_loadable)
        except (ValueError, KeyError) as e:  # mlx-lm cannot load it (an encoder, an unknown architecture)
            raise CreateError(f"cannot quantize this model: {e}") from None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return directory


def _inherited_dir(store: Store, source: str) -> Path:
    return _stored_parent(store, source).model_dir


def _create(store: Store, spec: CreateSpec, prepared: Path | None) -> Iterator[str]:
    manifest: dict[str, Any]
    if prepared is not None:
        base = _inherit(store, spec.from_) if spec.from_ else {}
        base.pop("files", None)  # the FROM model's blobs stay its own
        manifest = {**base, "source": {"type": "local", "path": str(prepared), "owned": True}}
        if spec.files:
            manifest["files"] = dict(sorted(spec.files.items()))
    elif spec.directory is not None:
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
    for key in ("renderer", "parser", "requires"):
        if getattr(spec, key):
            manifest[key] = getattr(spec, key)
    if spec.messages is not None:
        manifest["messages"] = [{"role": m.get("role", ""), "content": m.get("content", "")} for m in spec.messages]
    yield "writing manifest"
    previous = store.get(spec.name)
    store.put(spec.name, manifest)
    if previous is not None:
        release_replaced(store, previous)


def _inherit(store: Store, source: str) -> dict[str, Any]:
    parent = _stored_parent(store, source)
    return {k: v for k, v in parent.manifest.items() if k != "schemaVersion"}


def _stored_parent(store: Store, source: str) -> Any:
    try:
        parent = store.get(ModelName.parse(source))
    except InvalidName:
        raise CreateError("invalid model name") from None
    if parent is None:
        raise CreateError(f"model '{source}' not found", 404)
    return parent


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _check_blobs(blobs: Blobs, files: dict[str, str]) -> None:
    for path, digest in sorted(files.items()):
        if not blobs.path(digest).is_file():
            raise CreateError(f"blob not found for {path} (digest {digest})")


def _assemble(store: Store, files: dict[str, str]) -> Generator[str, None, Path]:
    """Link the blobs into the model directory (a generator: it reports each blob it uses)."""
    blobs = Blobs(store.home)
    _check_blobs(blobs, files)
    for _, digest in sorted(files.items()):
        yield f"using existing layer sha256:{digest[7:]}"
    directory_id = hashlib.sha256(json.dumps(dict(sorted(files.items()))).encode()).hexdigest()
    directory, _ = build_owned(
        store.home / "models", directory_id, lambda target: _link_blobs(blobs, files, target), check_loadable
    )
    return directory


def _link_blobs(blobs: Blobs, files: dict[str, str], target: Path) -> None:
    """One hard link per blob under the file's own name (a copy across filesystems)."""
    for path, digest in sorted(files.items()):
        dest = target.joinpath(*PurePosixPath(path).parts)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(blobs.path(digest), dest)
        except FileExistsError:  # a case-insensitive filesystem (macOS) made two names one file: copying
            # onto it would write through its hard link into the other file's blob
            raise CreateError(f"file path {path} names the same file as another one on this filesystem") from None
        except OSError:  # another filesystem: a copy costs space but works
            shutil.copyfile(blobs.path(digest), dest)


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
    refusal = architecture_refusal(info.config)
    if refusal is not None:
        raise CreateError(refusal)
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
    if no_prune():
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
        ours = path.name.startswith(STAGING_PREFIX) or re.fullmatch(r"[0-9a-f]{64}", path.name)
        if ours and path.name not in used_dirs:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
