"""Which Hugging Face repository an Ollama name means: the catalog (registry/catalog.toml, plus the user's
$MLX_SHIM_HOME/catalog.toml on top) for library names, and the name itself for `hf.co/<org>/<repo>`.

The catalog is data, not code, so a user adds a model or points a tag at another build by editing a file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.names import DEFAULT_HOST, DEFAULT_NAMESPACE, DEFAULT_TAG, ModelName

BUILTIN_CATALOG = Path(__file__).with_name("catalog.toml")
HF_HOSTS = ("hf.co", "huggingface.co")
CAPABILITIES = ("completion", "tools", "thinking", "insert", "vision", "embedding")
DEFAULT_REVISION = "main"


class CatalogError(ValueError):
    """A catalog file that cannot be read or has a malformed entry (its path and key say where)."""


_REQUIRED = frozenset({"repo", "family", "parameter_size", "quantization_level", "capabilities", "context_length"})
_OPTIONAL = frozenset({"model_type", "shape", "source"})


@dataclass(frozen=True)
class CatalogEntry:
    """One tag. `model_type` (the repository's mlx-lm architecture), `shape` (its config shape in
    catalog_shapes.toml) and `source` (where the repository is published) document the built-in entries and
    are optional in a user's file."""

    repo: str
    family: str
    parameter_size: str
    quantization_level: str
    capabilities: tuple[str, ...]
    context_length: int
    model_type: str = ""
    shape: str = ""
    source: str = ""

    @classmethod
    def from_toml(cls, key: str, raw: Any, origin: Path) -> CatalogEntry:
        where = f"{origin}: models.{key!r}"
        if not isinstance(raw, dict):
            raise CatalogError(f"{where} is not a table")
        if not _REQUIRED <= set(raw) <= _REQUIRED | _OPTIONAL:
            raise CatalogError(
                f"{where} needs the fields {sorted(_REQUIRED)} (and may have {sorted(_OPTIONAL)}), has {sorted(raw)}"
            )
        repo = raw["repo"]
        if not isinstance(repo, str) or repo.count("/") != 1 or not all(repo.split("/")):
            raise CatalogError(f"{where}: repo must be 'org/name', not {repo!r}")
        caps = raw["capabilities"]
        if not isinstance(caps, list) or not caps or not set(caps) <= set(CAPABILITIES) or len(set(caps)) < len(caps):
            raise CatalogError(f"{where}: capabilities must be distinct values of {CAPABILITIES}")
        for field in ("family", "parameter_size", "quantization_level", *(_OPTIONAL & set(raw))):
            if not isinstance(raw[field], str) or not raw[field]:
                raise CatalogError(f"{where}: {field} must be a non-empty string")
        context = raw["context_length"]
        if not isinstance(context, int) or isinstance(context, bool) or context <= 0:
            raise CatalogError(f"{where}: context_length must be a positive integer")
        documented = {field: raw[field] for field in _OPTIONAL & set(raw)}
        return cls(
            repo, raw["family"], raw["parameter_size"], raw["quantization_level"], tuple(caps), context, **documented
        )


@dataclass(frozen=True)
class Resolved:
    """What a pull fetches: a repository at a revision (a branch, tag or commit), and the catalog's facts
    about it when the name came from the catalog."""

    repo: str
    revision: str
    entry: CatalogEntry | None = None


class Catalog:
    def __init__(self, models: dict[str, CatalogEntry], latest: dict[str, str]) -> None:
        self.models = models
        self.latest = latest

    @classmethod
    def load(cls, home: Path | None = None) -> Catalog:
        """The built-in table, then the user's file in `home` on top (whole entries replace whole entries)."""
        models: dict[str, CatalogEntry] = {}
        latest: dict[str, str] = {}
        for path in (BUILTIN_CATALOG, home / "catalog.toml" if home else None):
            if path is None or not path.is_file():
                continue
            file_models, file_latest = _read(path)
            models.update(file_models)
            latest.update(file_latest)
        return cls(models, latest)

    def resolve(self, name: ModelName) -> Resolved | None:
        """hf.co names are their own answer; library names go through the table; anything else is unknown."""
        if name.host.lower() in HF_HOSTS:
            revision = DEFAULT_REVISION if name.tag.lower() == DEFAULT_TAG else name.tag
            return Resolved(f"{name.namespace}/{name.model}", revision)
        if name.host.lower() != DEFAULT_HOST or name.namespace.lower() != DEFAULT_NAMESPACE:
            return None
        model, tag = name.model.lower(), name.tag.lower()
        if tag == DEFAULT_TAG and model in self.latest:
            tag = self.latest[model].lower()
        entry = self.models.get(f"{model}:{tag}")
        return Resolved(entry.repo, DEFAULT_REVISION, entry) if entry else None


def _read(path: Path) -> tuple[dict[str, CatalogEntry], dict[str, str]]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise CatalogError(f"{path}: {e}") from e
    unknown = set(data) - {"models", "latest"}
    if unknown:
        raise CatalogError(f"{path}: unknown tables {sorted(unknown)} (expected [models] and [latest])")
    models = {}
    for key, raw in data.get("models", {}).items():
        try:
            name = ModelName.parse(key)
        except ValueError:
            raise CatalogError(f"{path}: models.{key!r} is not a valid model name") from None
        if (name.host, name.namespace) != (DEFAULT_HOST, DEFAULT_NAMESPACE) or ":" not in key:
            raise CatalogError(f"{path}: models.{key!r} must be a library name with a tag, like 'qwen2.5:7b'")
        models[key.lower()] = CatalogEntry.from_toml(key, raw, path)
    latest = {}
    for model, tag in data.get("latest", {}).items():
        if not isinstance(tag, str) or not tag:
            raise CatalogError(f"{path}: latest.{model!r} must name a tag")
        latest[model.lower()] = tag.lower()
    return models, latest
