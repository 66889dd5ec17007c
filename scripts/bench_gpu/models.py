"""Random-weight 4-bit models with Qwen2.5's real shapes, built with mlx-lm's own `qwen2` class.

Random weights make the benchmark reproducible anywhere without a download, and a benchmark of speed needs
only the shapes: the same matmuls, KV cache and vocabulary as the real model. Greedy decoding from random
weights practically never produces an end-of-sequence id, so every request runs to its token limit.

The tokenizer is byte-level BPE (built with `tokenizers`) whose vocabulary fills every id of the embedding:
the 256 bytes, then printable-ASCII pairs, then printable-ASCII triples (letter triples first), each triple's
merge chosen so that a triple standing alone encodes to one token; the last three ids are `<|endoftext|>`,
`<|im_start|>`, `<|im_end|>`. So every id the model may sample decodes to text, as with a real tokenizer.
"""

from __future__ import annotations

import json
import shutil
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn

from registry.gguf.pretokenize import (
    byte_level_split,
)  # Qwen2's pipeline, which transformers 5 applies to every qwen2 tokenizer

FULL_VOCAB = 151_936
SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
PRINTABLE = [chr(c) for c in range(32, 127)]
# The smallest vocabulary holding the bytes, every printable pair and the specials (pairs make prompts exact).
MIN_VOCAB = 256 + len(PRINTABLE) ** 2 + len(SPECIALS)

_COMMON = {"rms_norm_eps": 1e-6, "rope_theta": 1_000_000.0, "max_position_embeddings": 32768}
CONFIGS: dict[str, dict[str, Any]] = {
    "0.5b": {"hidden_size": 896, "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
             "intermediate_size": 4864, "tie_word_embeddings": True},
    "7b": {"hidden_size": 3584, "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
           "intermediate_size": 18944, "tie_word_embeddings": False},
    "tiny": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
             "intermediate_size": 192, "tie_word_embeddings": True},
}  # fmt: skip
QUANTIZATION = {"group_size": 64, "bits": 4}

CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if loop.first and message.role != 'system' %}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte-level alphabet: each byte as one printable unicode character (what ByteLevel uses)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


def _triples() -> Iterator[str]:
    """Printable-ASCII triples, letters-only ones first (they make one-token words for unique prompt starts)."""
    letters = string.ascii_letters
    yield from (a + b + c for a in letters for b in letters for c in letters)
    yield from (
        a + b + c
        for a in PRINTABLE
        for b in PRINTABLE
        for c in PRINTABLE
        if not (a in letters and b in letters and c in letters)
    )


def build_tokenizer(vocab_size: int):
    """The byte-level BPE tokenizer described in the module docstring, exactly `vocab_size` ids."""
    from tokenizers import AddedToken, Tokenizer, decoders, models

    if vocab_size < MIN_VOCAB:
        raise ValueError(f"--vocab must be at least {MIN_VOCAB} (bytes, printable pairs, specials)")
    b2u = _bytes_to_unicode()
    enc = {ch: b2u[ord(ch)] for ch in PRINTABLE}
    vocab = {b2u[b]: b for b in range(256)}
    merges: list[tuple[str, str]] = []
    pair_rank: dict[str, int] = {}
    for a in PRINTABLE:
        for b in PRINTABLE:
            pair_rank[a + b] = len(merges)
            merges.append((enc[a], enc[b]))
            vocab[enc[a] + enc[b]] = len(vocab)
    regular = vocab_size - len(SPECIALS)
    triples = _triples()
    while len(vocab) < regular:
        t = next(triples)
        # BPE merges the lower-ranked pair first; merging the triple on that side makes it one token.
        first = pair_rank[t[:2]] <= pair_rank[t[1:]]
        merges.append((enc[t[0]] + enc[t[1]], enc[t[2]]) if first else (enc[t[0]], enc[t[1]] + enc[t[2]]))
        vocab["".join(enc[c] for c in t)] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    qwen2 = byte_level_split("qwen2")  # NFC, Qwen2's split, then bytes: the GGUF converter's own pipeline
    tok.normalizer = qwen2.normalizer
    tok.pre_tokenizer = qwen2.pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    if tok.get_vocab_size() != vocab_size:
        raise AssertionError(f"tokenizer has {tok.get_vocab_size()} ids, expected {vocab_size}")
    empty = [i for i, s in enumerate(tok.decode_batch([[i] for i in range(vocab_size)], False)) if not s]
    if empty:
        raise AssertionError(f"{len(empty)} ids decode to nothing, e.g. {empty[:5]}")
    return tok


def _tokenizer_config(tok) -> dict[str, Any]:
    ids = {t: tok.token_to_id(t) for t in SPECIALS}
    return {
        "tokenizer_class": "Qwen2Tokenizer",
        "added_tokens_decoder": {
            str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
                     "special": True}
            for t, i in ids.items()
        },
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 32768,
        "split_special_tokens": False,
        "errors": "replace",
    }  # fmt: skip


def _quantize_in_place(model: nn.Module, dtype: mx.Dtype) -> None:
    """Cast and quantize one block at a time, evaluating each before the next: the float weights of one
    layer at most are alive at once (MLX builds the random initial weights lazily)."""
    blocks = [model.model.embed_tokens, *model.model.layers]
    if hasattr(model, "lm_head"):
        blocks.append(model.lm_head)
    for block in blocks:
        block.set_dtype(dtype)
        if isinstance(block, nn.Embedding | nn.Linear):
            quantized = block.to_quantized(**QUANTIZATION)
            if block is model.model.embed_tokens:
                model.model.embed_tokens = quantized
            else:
                model.lm_head = quantized
            block = quantized
        else:
            nn.quantize(block, **QUANTIZATION)
        mx.eval(block.parameters())
    model.model.norm.set_dtype(dtype)
    mx.eval(model.parameters())


def build_model(out_dir: Path, config: str, vocab_size: int, dtype: mx.Dtype, seed: int = 0) -> Path:
    """Write the model directory (config.json with its quantization, safetensors, tokenizer files) and
    return it; an existing complete build of the same settings is reused."""
    from mlx_lm.models import qwen2
    from mlx_lm.utils import save_config, save_model

    settings = {**_COMMON, **CONFIGS[config], "vocab_size": vocab_size, "model_type": "qwen2"}
    marker = out_dir / "bench-build.json"
    wanted = {"settings": settings, "dtype": str(dtype), "seed": seed, "version": 1}
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        return out_dir
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    tok = build_tokenizer(vocab_size)
    mx.random.seed(seed)
    model = qwen2.Model(qwen2.ModelArgs.from_dict(settings))
    _quantize_in_place(model, dtype)
    save_model(out_dir, model, donate_model=True)
    del model
    config_json = {
        **settings, "architectures": ["Qwen2ForCausalLM"], "hidden_act": "silu", "use_sliding_window": False,
        "torch_dtype": str(dtype).split(".")[-1], "max_window_layers": settings["num_hidden_layers"],
        "bos_token_id": None, "eos_token_id": tok.token_to_id("<|im_end|>"), "quantization": dict(QUANTIZATION),
    }  # fmt: skip
    save_config(config_json, out_dir / "config.json")
    tok.save(str(out_dir / "tokenizer.json"))
    (out_dir / "tokenizer_config.json").write_text(json.dumps(_tokenizer_config(tok), indent=2) + "\n")
    generation = {"eos_token_id": [tok.token_to_id("<|im_end|>"), tok.token_to_id("<|endoftext|>")]}
    (out_dir / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")
    marker.write_text(json.dumps(wanted))
    mx.clear_cache()  # the float weights' buffers: give them back before the servers load the model
    return out_dir
