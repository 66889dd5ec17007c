"""`POST /api/show` field by field on the tiny model: model_info keys from config.json and the tokenizer,
`verbose`, the license from a LICENSE file, the regenerated Modelfile's quoting."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import httpx

from tests.test_create import create, delete, upload_dir


def show(server: Any, **body: Any) -> dict[str, Any]:
    response = httpx.post(f"{server.url}/api/show", json=body, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    return dict(response.json())


def test_model_info_keys_from_config_and_tokenizer(server: Any) -> None:
    info = show(server, model="qwen-tiny")["model_info"]
    assert list(info) == sorted(info)
    assert info["general.architecture"] == "qwen2"
    assert info["general.parameter_count"] == 197184  # counted from the safetensors headers (4-bit unpacked)
    assert info["qwen2.context_length"] == 4096
    assert info["qwen2.embedding_length"] == 64
    assert info["qwen2.block_count"] == 2
    assert info["qwen2.attention.head_count"] == 4
    assert info["qwen2.attention.head_count_kv"] == 2
    assert info["qwen2.feed_forward_length"] == 192
    assert info["qwen2.rope.dimension_count"] == 16
    assert info["qwen2.rope.freq_base"] == 1000000
    assert info["qwen2.attention.layer_norm_rms_epsilon"] == 1e-06
    assert info["qwen2.vocab_size"] == 1536
    assert info["tokenizer.ggml.model"] == "gpt2"
    assert info["tokenizer.ggml.eos_token_id"] == 2
    assert info["tokenizer.ggml.tokens"] is None and info["tokenizer.ggml.merges"] is None  # long arrays hidden


def test_verbose_shows_the_long_arrays(server: Any, tiny_model_dir: Path) -> None:
    info = show(server, model="qwen-tiny", verbose=True)["model_info"]
    tokens = info["tokenizer.ggml.tokens"]
    assert len(tokens) == 1536 and "<|im_end|>" in tokens and len(info["tokenizer.ggml.merges"]) > 100


def test_every_field(server: Any) -> None:
    shown = show(server, model="tiny")
    assert list(shown) == [
        "modelfile",
        "parameters",
        "template",
        "system",
        "details",
        "model_info",
        "tensors",
        "capabilities",
        "modified_at",
    ]  # Go's field order; license and messages are omitted when empty
    assert shown["parameters"] == 'stop                           "</s>"\nnum_ctx                        512'
    assert shown["template"].startswith("{{ if .System }}<|system|>")
    assert '\nTEMPLATE "{{ if .System }}<|system|>\n' in shown["modelfile"]  # multi-line: quoted
    assert "\nSYSTEM You are a tiny test model.\nPARAMETER stop </s>\nPARAMETER num_ctx 512\n" in shown["modelfile"]
    assert shown["details"]["format"] == "safetensors" and shown["details"]["quantization_level"] == "Q4"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?([+-]\d\d:\d\d|Z)", shown["modified_at"])
    assert all(set(t) == {"name", "type", "shape"} for t in shown["tensors"])


def test_request_options_and_system_override(server: Any) -> None:
    shown = show(server, model="tiny", system="Other.", options={"temperature": 0.5, "top_k": 3})
    assert shown["system"] == "Other."
    assert "temperature                    0.5" in shown["parameters"] and "PARAMETER top_k 3\n" in shown["modelfile"]


def test_license_from_the_model_directory(server: Any, tiny_model_dir: Path, tmp_path: Path) -> None:
    licensed = tmp_path / "licensed"
    shutil.copytree(tiny_model_dir, licensed)
    (licensed / "LICENSE").write_text("Apache License\nVersion 2.0\n")
    files = upload_dir(server.url, licensed)
    assert create(server.url, {"model": "licensed", "files": files, "stream": False}).status_code == 200
    assert show(server, model="licensed")["license"] == "Apache License\nVersion 2.0\n"
    # A LICENSE given at create time is the model's license instead.
    body = {"model": "licensed2", "from": "licensed", "license": ["one", "two"], "stream": False}
    assert create(server.url, body).status_code == 200
    shown = show(server, model="licensed2")
    assert shown["license"] == "one\ntwo"
    assert "\nLICENSE one\nLICENSE two\n" in shown["modelfile"]
    for name in ("licensed", "licensed2"):
        delete(server.url, name)
