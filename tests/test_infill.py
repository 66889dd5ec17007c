"""Fill-in-the-middle formats found from tokenizer files, and capabilities that say exactly what works."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from registry.infill import infill_format, vocabulary_has
from registry.model_dir import ModelDirInfo
from scripts.tiny_model import fim

FAMILIES = [
    ("qwen", {"<|fim_prefix|>": 1, "<|fim_suffix|>": 2, "<|fim_middle|>": 3, "<|fim_pad|>": 4}),
    ("starcoder", {"<fim_prefix>": 1, "<fim_suffix>": 2, "<fim_middle>": 3}),
    ("codellama", {"▁<PRE>": 32007, "▁<SUF>": 32008, "▁<MID>": 32009, "▁<EOT>": 32010}),
    ("deepseek", {"<｜fim▁begin｜>": 1, "<｜fim▁hole｜>": 2, "<｜fim▁end｜>": 3}),
    ("mistral", {"[PREFIX]": 1, "[SUFFIX]": 2, "[MIDDLE]": 3}),
    (None, {"<|im_start|>": 1, "<fim_prefix>": 2}),  # a half-present format is none
]


@pytest.mark.parametrize(("family", "vocab"), FAMILIES)
@pytest.mark.parametrize("ascii_only", [False, True])
def test_infill_format_from_tokenizer_files(tmp_path: Path, family: str | None, vocab: dict, ascii_only: bool) -> None:
    """Tokens in the vocabulary or in added_tokens, written raw or \\u-escaped (DeepSeek's full-width bars)."""
    added = [{"id": i, "content": t, "special": True} for t, i in vocab.items()]
    tokenizer = {"version": "1.0", "added_tokens": added[:1], "model": {"type": "BPE", "vocab": vocab}}
    (tmp_path / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=ascii_only), encoding="utf-8")
    fmt = infill_format(vocabulary_has(tmp_path))
    assert (fmt.family if fmt else None) == family


def test_no_tokenizer_files_means_no_infill(tmp_path: Path) -> None:
    assert infill_format(vocabulary_has(tmp_path)) is None


def model_copy(tiny_model_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "model"
    shutil.copytree(tiny_model_dir, out)
    return out


def test_capabilities_follow_what_works(tiny_model_dir: Path, tmp_path: Path) -> None:
    assert ModelDirInfo.read(tiny_model_dir).capabilities == ("completion", "tools", "insert", "thinking")
    path = model_copy(tiny_model_dir, tmp_path)
    config_file = path / "tokenizer_config.json"
    config = json.loads(config_file.read_text())

    # a template that renders tools in a form mlx-lm has no parser for: no tools
    config["chat_template"] = "{% for m in messages %}{{ m.content }}{% endfor %}{% if tools %}{{ tools }}{% endif %}"
    config_file.write_text(json.dumps(config))
    assert ModelDirInfo.read(path).capabilities == ("completion", "insert")

    # Mistral's [TOOL_CALLS] template: mlx-lm's mistral parser, so tools
    config["chat_template"] = "{% if tools %}[AVAILABLE_TOOLS]{{ tools }}{% endif %}[TOOL_CALLS]"
    config_file.write_text(json.dumps(config))
    assert ModelDirInfo.read(path).capabilities == ("completion", "tools", "insert")

    # a tokenizer without FIM tokens: no insert
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (path / name).write_text((path / name).read_text().replace("fim_", "no_fim_"))  # (a new size: a new state)
    assert "insert" not in ModelDirInfo.read(path).capabilities


def test_infill_prompt_is_built_from_token_ids(tiny_model_dir: Path) -> None:
    """The tiny model's tokenizer: Qwen's format, FIM tokens as ids, code that spells a marker stays text."""
    from mlx_lm.tokenizer_utils import load as load_tokenizer

    from shim.engine.prompt import stop_token_ids, tokenizer_infill_format

    tokenizer = load_tokenizer(tiny_model_dir)
    fmt = tokenizer_infill_format(tokenizer)
    assert fmt is not None and fmt.family == "qwen"
    prefix, suffix, _ = fim.fim_parts(fim.FIM_FUNCTIONS[0], "", "\n# <|fim_middle|>\n")
    from registry.store import StoredModel
    from shim.engine.prompt import build_prompt
    from shim.engine.types import CompletionRequest, Infill
    from shim.options import resolve_options

    stored = StoredModel.__new__(StoredModel)
    req = CompletionRequest(model=stored, options=resolve_options(4096, {}, None), infill=Infill(prefix, suffix))
    ids = build_prompt(req, tokenizer, 4096)
    special = [tokenizer.convert_tokens_to_ids(t) for t in ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")]
    assert [i for i in ids if i in special] == special  # the one in the code is not the token
    assert ids[0] == special[0] and ids[-1] == special[2]
    assert tokenizer.decode(ids) == fim.fim_prompt(prefix, suffix)
    assert stop_token_ids(req, tokenizer) == {tokenizer.convert_tokens_to_ids("<|endoftext|>")}
