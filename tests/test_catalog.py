"""The catalog: every entry well formed and unique, `latest` as in Ollama's library, hf.co names direct,
and a user's catalog.toml adds or replaces entries."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from registry.catalog import BUILTIN_CATALOG, CAPABILITIES, Catalog, CatalogError
from registry.names import ModelName

# Families whose library default has no entry, so that `<family>` alone is not mistaken for another size:
# granite4's latest is micro, which mlx-community publishes in 8 bits only; ministral-3's was not confirmed.
WITHOUT_LATEST = {"granite4", "ministral-3"}


def test_every_builtin_entry_is_well_formed_and_unique() -> None:
    catalog = Catalog.load()
    raw = tomllib.loads(BUILTIN_CATALOG.read_text())
    assert len(catalog.models) == len(raw["models"]) >= 90
    repos = [entry.repo for entry in catalog.models.values()]
    assert len(set(repos)) == len(repos), "two tags point at one repository"
    for key, entry in catalog.models.items():
        assert entry.repo.startswith("mlx-community/"), key
        assert ("-4bit" in entry.repo) == (entry.quantization_level == "Q4"), key  # the level says what the repo is
        assert ("MXFP4" in entry.repo) == (entry.quantization_level == "MXFP4"), key
        assert set(entry.capabilities) <= set(CAPABILITIES)
        assert ("embedding" in entry.capabilities) == (entry.capabilities == ("embedding",)), key
        assert entry.parameter_size[-1] in "KMB" and entry.parameter_size[:-1].replace(".", "").isdigit(), key
    for model, tag in catalog.latest.items():
        assert f"{model}:{tag}" in catalog.models, f"latest tag of {model} has no entry"
    families = {key.split(":")[0] for key in catalog.models}
    assert families - WITHOUT_LATEST == set(catalog.latest), "every family needs a latest tag"
    assert families >= WITHOUT_LATEST


@pytest.mark.parametrize(
    ("name", "repo"),
    [
        ("qwen2.5", "mlx-community/Qwen2.5-7B-Instruct-4bit"),
        ("qwen2.5:latest", "mlx-community/Qwen2.5-7B-Instruct-4bit"),
        ("QWEN2.5:0.5B", "mlx-community/Qwen2.5-0.5B-Instruct-4bit"),
        ("llama3.2", "mlx-community/Llama-3.2-3B-Instruct-4bit"),
        ("registry.ollama.ai/library/llama3.2:1b", "mlx-community/Llama-3.2-1B-Instruct-4bit"),
        ("qwen2.5-coder:32b", "mlx-community/Qwen2.5-Coder-32B-Instruct-4bit"),
        ("deepseek-r1:8b", "mlx-community/DeepSeek-R1-Distill-Llama-8B-4bit"),
        ("all-minilm", "mlx-community/all-MiniLM-L6-v2-4bit"),
        ("gpt-oss", "mlx-community/gpt-oss-20b-MXFP4-Q8"),
        ("qwen3:30b-instruct", "mlx-community/Qwen3-30B-A3B-Instruct-2507-4bit"),
        ("qwen3.5", "mlx-community/Qwen3.5-9B-4bit"),
        ("gemma4:26b", "mlx-community/gemma-4-26b-a4b-it-4bit"),
        ("qwen2.5vl", "mlx-community/Qwen2.5-VL-7B-Instruct-4bit"),
        ("qwen3-vl", "mlx-community/Qwen3-VL-8B-Thinking-4bit"),
        ("qwen3-vl:4b-instruct", "mlx-community/Qwen3-VL-4B-Instruct-4bit"),
    ],
)
def test_library_names(name: str, repo: str) -> None:
    resolved = Catalog.load().resolve(ModelName.parse(name))
    assert resolved is not None and resolved.repo == repo and resolved.revision == "main"


@pytest.mark.parametrize("name", ["qwen2.5:99b", "nosuchmodel", "someone/qwen2.5:7b", "example.com/library/qwen2.5"])
def test_unknown_names(name: str) -> None:
    assert Catalog.load().resolve(ModelName.parse(name)) is None


@pytest.mark.parametrize(
    ("name", "repo", "revision"),
    [
        ("hf.co/mlx-community/Qwen3-4B-4bit", "mlx-community/Qwen3-4B-4bit", "main"),
        ("huggingface.co/mlx-community/Qwen3-4B-4bit:v2", "mlx-community/Qwen3-4B-4bit", "v2"),
        ("HF.CO/someone/tiny:latest", "someone/tiny", "main"),
    ],
)
def test_hugging_face_names_name_the_repository(name: str, repo: str, revision: str) -> None:
    resolved = Catalog.load().resolve(ModelName.parse(name))
    assert resolved is not None and (resolved.repo, resolved.revision, resolved.entry) == (repo, revision, None)


ENTRY = 'repo = "me/{repo}"\nfamily = "qwen2"\nparameter_size = "1M"\nquantization_level = "Q4"\n'
ENTRY += 'capabilities = ["completion"]\ncontext_length = 512\n'


def test_user_entries_may_document_their_model_type_shape_and_source(tmp_path: Path) -> None:
    documented = ENTRY.format(repo="mine") + 'model_type = "qwen2"\nsource = "https://example.com/mine"\n'
    (tmp_path / "catalog.toml").write_text('[models."mine:1m"]\n' + documented)
    entry = Catalog.load(tmp_path).models["mine:1m"]
    assert (entry.model_type, entry.shape, entry.source) == ("qwen2", "", "https://example.com/mine")


def test_user_file_adds_and_replaces(tmp_path: Path) -> None:
    (tmp_path / "catalog.toml").write_text(
        '[latest]\n"mine" = "1m"\n"qwen2.5" = "0.5b"\n'
        + '[models."mine:1m"]\n'
        + ENTRY.format(repo="mine")
        + '[models."qwen2.5:7b"]\n'
        + ENTRY.format(repo="other-7b")
    )
    catalog = Catalog.load(tmp_path)
    assert catalog.resolve(ModelName.parse("mine")).repo == "me/mine"  # type: ignore[union-attr]
    assert catalog.resolve(ModelName.parse("qwen2.5:7b")).repo == "me/other-7b"  # type: ignore[union-attr]
    latest = catalog.resolve(ModelName.parse("qwen2.5"))
    assert latest is not None and latest.repo == "mlx-community/Qwen2.5-0.5B-Instruct-4bit"
    assert catalog.resolve(ModelName.parse("llama3.2")) is not None  # the built-in table is still there


@pytest.mark.parametrize(
    "text",
    [
        '[models."x:1"]\n' + ENTRY.format(repo="x").replace('"me/x"', '"no-slash"'),
        '[models."x:1"]\n' + ENTRY.format(repo="x").replace('"completion"', '"flying"'),
        '[models."x:1"]\n' + ENTRY.format(repo="x").replace("512", "0"),
        '[models."x:1"]\n' + ENTRY.format(repo="x").replace('family = "qwen2"\n', ""),
        '[models."x:1"]\n' + ENTRY.format(repo="x") + 'flavour = "mint"\n',
        '[models."x:1"]\n' + ENTRY.format(repo="x") + "model_type = 5\n",
        '[models."x"]\n' + ENTRY.format(repo="x"),
        '[models."someone/x:1"]\n' + ENTRY.format(repo="x"),
        "[modles]\n",
        "not toml = = =",
    ],
)
def test_malformed_user_files_are_refused_with_their_path(tmp_path: Path, text: str) -> None:
    (tmp_path / "catalog.toml").write_text(text)
    with pytest.raises(CatalogError, match=str(tmp_path)):
        Catalog.load(tmp_path)
