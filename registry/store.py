"""The local model store: one small JSON manifest per Ollama name under `MLX_SHIM_HOME/manifests/`.

Layout mirrors Ollama's (`manifests/<host>/<namespace>/<model>/<tag>`) so names map to paths the same
way. A manifest (schema 1) is:

    {"schemaVersion": 1,
     "source": {"type": "local", "path": "/abs/model/dir"},
     "system": "...", "template": "...", "parameters": {"num_ctx": 512, "stop": ["</s>"]},
     "license": ["..."], "messages": [{"role": "user", "content": "..."}]}

`system`, `template`, `parameters`, `license` and `messages` are optional. A model created from uploaded
blobs has `"owned": true` in its source and `"files": {"name": "sha256:<hex>"}` (registry/create.py). A
pulled model's source names a Hugging Face repository at one commit, whose files live in the Hugging Face
cache (registry/hf_cache.py), not here:

    "source": {"type": "hf", "repo": "mlx-community/Qwen2.5-7B-Instruct-4bit", "revision": "<commit sha>",
               "files": [{"path": "config.json", "size": 1234, "digest": "sha256:<hex>"}, ...],
               "downloaded": ["config.json", ...]}

`files` is what the model needs (a model with any of them missing or of another size is not present);
`downloaded` is what mlx-shim itself fetched, the only files a delete may remove from the cache.
The digest Ollama reports is the sha256 of these bytes, and `modified_at` their mtime, so a manifest is
only ever replaced whole (write to a temporary file, fsync, rename): a crash leaves the old one or the
new one, never half of either.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry import atomic, hf_cache
from registry.blobs import Blobs, InvalidDigest
from registry.model_dir import ModelDirInfo, NotAModelDir
from registry.names import ModelName
from shim.config import store_home

SCHEMA_VERSION = 1


def default_home() -> Path:
    return store_home()


@dataclass(frozen=True)
class StoredModel:
    name: ModelName
    manifest_path: Path
    manifest: dict[str, Any]
    digest: str
    modified_ns: int

    @property
    def source(self) -> dict[str, Any]:
        return dict(self.manifest["source"])

    @property
    def model_dir(self) -> Path:
        source = self.manifest["source"]
        if source.get("type") == "hf":
            return hf_cache.snapshot_dir(source["repo"], source["revision"])
        if owned_id(self.manifest):  # found in this store's models/ even after the whole store was moved
            return self.manifest_path.parents[4] / "models" / owned_id(self.manifest)
        return Path(source["path"])

    @property
    def system(self) -> str:
        return str(self.manifest.get("system") or "")

    @property
    def template(self) -> str:
        return str(self.manifest.get("template") or "")

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self.manifest.get("parameters") or {})

    @property
    def license(self) -> list[str]:
        return [str(text) for text in self.manifest.get("license") or []]

    @property
    def messages(self) -> list[dict[str, str]]:
        """MESSAGE history stored at create time: it goes before the request's messages, as in Ollama."""
        return [dict(m) for m in self.manifest.get("messages") or []]

    def info(self) -> ModelDirInfo:
        """Raises (OSError, ValueError) when the model is not really present. Computed once per state of the
        model's files (`ModelDirInfo.cached`); the check that a pulled model's files are all there is a stat
        per file, made every time. Blocking file I/O all the same: call it off the event loop."""
        self._check_files()
        return ModelDirInfo.cached(self.model_dir)

    def _check_files(self) -> None:
        source = self.manifest["source"]
        if source.get("type") != "hf":
            return
        directory = self.model_dir
        for file in source.get("files", []):
            if (directory / file["path"]).stat().st_size != file["size"]:
                raise NotAModelDir(f"{directory / file['path']} is not the file that was pulled")

    def capabilities(self, info: ModelDirInfo) -> tuple[str, ...]:
        """A Go TEMPLATE override decides what the model can do, as in Ollama (which reads the
        template's variables); otherwise the model's own chat template does. An embedding model only ever
        embeds, whatever template it was given."""
        if not self.template or info.capabilities == ("embedding",):
            return info.capabilities
        caps = ["completion"]
        caps += ["tools"] if ".Tools" in self.template else []
        caps += ["insert"] if ".Suffix" in self.template else []
        caps += ["vision"] if "vision" in info.capabilities else []  # the tower, not the template, decides
        caps += ["thinking"] if ".Think" in self.template else []
        return tuple(caps)


def owned_id(manifest: dict[str, Any]) -> str:
    """The `models/<id>` folder of a model assembled from uploaded blobs ("" for any other source): the id,
    not the stored absolute path, says which folder, so a store that was moved still finds and keeps it."""
    source = manifest.get("source") or {}
    return Path(source["path"]).name if source.get("owned") and source.get("path") else ""


class Store:
    def __init__(self, home: Path | None = None) -> None:
        self.home = home or default_home()
        self.manifests = self.home / "manifests"
        # Held by whatever changes names and releases what they used (create, copy, delete): a release
        # decides from the names it sees, so no name may appear between its look and its removal.
        self.changing = threading.RLock()
        # Names a background job (the embedded model's first-start import) is about to register: a request
        # for one waits for it, as for a load, instead of answering 404.
        self._arriving: dict[tuple[str, str, str, str], Future[None]] = {}
        # Case-insensitive key -> manifest path, for names asked in another casing than stored. Rebuilt from
        # the directory tree (names only, no manifest read) when a key is missing or its file has gone, so a
        # manifest written by another process is still found.
        self._index: dict[tuple[str, str, str, str], Path] = {}
        self._index_lock = threading.Lock()

    def expect(self, name: ModelName) -> Future[None]:
        """Announce `name` as arriving; the caller completes the future (result or exception) when done."""
        future: Future[None] = Future()
        self._arriving[name.key()] = future
        future.add_done_callback(lambda _: self._arriving.pop(name.key(), None))
        return future

    def arriving(self, name: ModelName) -> Future[None] | None:
        """The pending arrival of `name`, if a background job is about to register it."""
        return self._arriving.get(name.key())

    def _path(self, name: ModelName) -> Path:
        return self.manifests / name.host / name.namespace / name.model / name.tag

    def _load(self, name: ModelName, path: Path) -> StoredModel | None:
        try:
            raw = path.read_bytes()
            stat = path.stat()
            manifest = json.loads(raw)
        except (OSError, ValueError):
            return None
        if not isinstance(manifest, dict) or "source" not in manifest:
            return None
        return StoredModel(name, path, manifest, hashlib.sha256(raw).hexdigest(), stat.st_mtime_ns)

    def _names(self) -> list[tuple[ModelName, Path]]:
        """Every valid name with a manifest file, from the directory tree alone."""
        found = []
        if self.manifests.is_dir():
            for path in self.manifests.glob("*/*/*/*"):
                if not path.is_file() or path.name.startswith("."):
                    continue
                host, namespace, model = path.parts[-4:-1]
                try:
                    name = ModelName(host, namespace, model, path.name)
                    name.validate(path.name)
                except ValueError:
                    continue
                found.append((name, path))
        return found

    def list(self) -> list[StoredModel]:
        """Every readable manifest, newest first (the order of Ollama's /api/tags)."""
        found = [stored for name, path in self._names() if (stored := self._load(name, path)) is not None]
        return sorted(found, key=lambda m: m.modified_ns, reverse=True)

    def get(self, name: ModelName) -> StoredModel | None:
        """Exact path first, then a case-insensitive match that adopts the stored casing (as Ollama)."""
        stored = self._load(name, self._path(name))
        if stored is not None:
            return stored
        key = name.key()
        with self._index_lock:
            path = self._index.get(key)
            if path is None or not path.is_file():
                self._index = {found.key(): found_path for found, found_path in self._names()}
                path = self._index.get(key)
        if path is None:
            return None
        host, namespace, model = path.parts[-4:-1]
        return self._load(ModelName(host, namespace, model, path.name), path)

    def put(self, name: ModelName, manifest: dict[str, Any]) -> StoredModel:
        existing = self.get(name)
        target = existing.manifest_path if existing else self._path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"schemaVersion": SCHEMA_VERSION, **manifest}, indent=2).encode() + b"\n"
        atomic.write_bytes(target, data)
        stored = self._load(existing.name if existing else name, target)
        assert stored is not None
        return stored

    def remove(self, name: ModelName) -> StoredModel | None:
        """The removed model, or None when there was no such name."""
        with self.changing:
            stored = self.get(name)
            if stored is None:
                return None
            stored.manifest_path.unlink()
            self.release_if_unused(stored)
            return stored

    def release_if_unused(self, old: StoredModel) -> None:
        """A directory mlx-shim assembled from uploaded blobs (source `owned`) goes, with its blobs, once no
        name uses it any more; a directory the user registered in place is theirs and stays."""
        model_id = owned_id(old.manifest)
        if not model_id:
            return
        remaining = self.list()
        if any(owned_id(m.manifest) == model_id for m in remaining):
            return
        shutil.rmtree(self.home / "models" / model_id, ignore_errors=True)
        in_use = {d for m in remaining for d in (m.manifest.get("files") or {}).values()}
        blobs = Blobs(self.home)
        for digest in (old.manifest.get("files") or {}).values():
            if digest not in in_use:
                try:
                    blobs.path(digest).unlink(missing_ok=True)
                except InvalidDigest:
                    continue
