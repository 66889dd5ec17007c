"""Ollama's own name rules (types/model/name_test.go), table for table.

Ollama's older tests also carried a `@digest` suffix; names with a digest are not accepted by the current
parser nor by mlx-shim, so those rows are checked as invalid instead."""

from __future__ import annotations

import pytest

from registry.names import InvalidName, ModelName

PART80 = "8" * 80
PART350 = "3" * 350


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        (
            "registry.ollama.ai/library/dolphin-mistral:7b-v2.6-dpo-laser-q6_K",
            ("registry.ollama.ai", "library", "dolphin-mistral", "7b-v2.6-dpo-laser-q6_K"),
        ),
        ("scheme://host:port/namespace/model:tag", ("host:port", "namespace", "model", "tag")),
        ("host/namespace/model:tag", ("host", "namespace", "model", "tag")),
        ("host:port/namespace/model:tag", ("host:port", "namespace", "model", "tag")),
        ("host/namespace/model", ("host", "namespace", "model", "latest")),
        ("host:port/namespace/model", ("host:port", "namespace", "model", "latest")),
        ("namespace/model", ("registry.ollama.ai", "namespace", "model", "latest")),
        ("model", ("registry.ollama.ai", "library", "model", "latest")),
        ("h/nn/mm:t", ("h", "nn", "mm", "t")),
        (f"{PART80}/{PART80}/{PART80}:{PART80}", (PART80, PART80, PART80, PART80)),
        (f"{PART350}/{PART80}/{PART80}:{PART80}", (PART350, PART80, PART80, PART80)),
        (
            "hf.co/mlx-community/Qwen2.5-7B-Instruct-4bit",
            ("hf.co", "mlx-community", "Qwen2.5-7B-Instruct-4bit", "latest"),
        ),
        ("  tiny  ", ("registry.ollama.ai", "library", "tiny", "latest")),
    ],
)
def test_parse_fills_defaults_like_ollama(text: str, parts: tuple[str, str, str, str]) -> None:
    name = ModelName.parse(text)
    assert (name.host, name.namespace, name.model, name.tag) == parts


def test_default_fill() -> None:
    assert ModelName.parse("xx").full == "registry.ollama.ai/library/xx:latest"


VALID = [
    "_why/_the/_lucky:_stiff",
    "host/namespace/model:tag",
    f"{PART80}/{PART80}/{PART80}:{PART80}",
    f"{PART350}/{PART80}/{PART80}:{PART80}",
    "host:https/namespace/model:tag",
    "h/nn/mm:t",
]
INVALID = [
    "",
    "   ",
    "^",
    "mm:",
    "n/m:",
    "/nn/mm",
    "//",
    "//mm",
    "hh//",
    "//mm:@",
    "00@",
    "@",
    "@t",
    "m@d",
    "-hh/nn/mm:tt",
    "hh/-nn/mm:tt",
    "hh/nn/-mm:tt",
    "hh/nn/mm:-tt",
    "host/name:space/model:tag",
    "a/b/c/d",
    "https://model",
    "ns.dot/model",
    f"{'8' * 81}",
    f"h/{'8' * 81}/m",
    f"m:{'8' * 81}",
    f"{'3' * 351}/n/m:t",
    "h/n/m:t@d",
    "model@sha256:1000000000000000000000000000000000000000000000000000000000000000",
]


@pytest.mark.parametrize("text", VALID)
def test_valid_names_round_trip(text: str) -> None:
    assert ModelName.parse(text).full == text


@pytest.mark.parametrize("text", INVALID)
def test_invalid_names(text: str) -> None:
    with pytest.raises(InvalidName):
        ModelName.parse(text)


@pytest.mark.parametrize(
    ("text", "display"),
    [
        ("registry.ollama.ai/library/model:latest", "model:latest"),
        ("registry.ollama.ai/library/model:tag", "model:tag"),
        ("registry.ollama.ai/namespace/model:tag", "namespace/model:tag"),
        ("host/namespace/model:tag", "host/namespace/model:tag"),
        ("host/library/model:tag", "host/library/model:tag"),
        ("REGISTRY.OLLAMA.AI/Library/Model:Tag", "Model:Tag"),
    ],
)
def test_display_shortest(text: str, display: str) -> None:
    assert ModelName.parse(text).display == display


@pytest.mark.parametrize(
    ("host", "ok"), [("a", True), ("a.", True), ("a.b", True), ("a:123", True), ("a:123/aa/bb", False), ("", False)]
)
def test_host_part(host: str, ok: bool) -> None:
    name = ModelName(host, "n", "m", "t")
    if ok:
        name.validate(host)
    else:
        with pytest.raises(InvalidName):
            name.validate(host)


@pytest.mark.parametrize(("namespace", "ok"), [("bb", True), ("a.", False), ("a:b", False), ("a/b", False)])
def test_namespace_part(namespace: str, ok: bool) -> None:
    name = ModelName("h", namespace, "m", "t")
    if ok:
        name.validate(namespace)
    else:
        with pytest.raises(InvalidName):
            name.validate(namespace)


def test_case_insensitive_identity() -> None:
    assert ModelName.parse("LLAMA3.2:LATEST").key() == ModelName.parse("llama3.2").key()
    assert ModelName.parse("llama3.2:1b").key() != ModelName.parse("llama3.2").key()
