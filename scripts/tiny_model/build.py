"""Build a tiny but real, trained, 4-bit MLX chat model in under a minute on two CPU cores.

The model is mlx-lm's own Qwen2 (hidden 64, 2 layers, 4 heads / 2 KV heads, MLP 192, vocab 1536, 4096
positions, tied embeddings), with a byte-level BPE tokenizer and a Qwen3-style ChatML template (tools,
<think>), trained with MLX on synthetic transcripts (``scripts.tiny_model.corpus``) until greedy decoding
shows what a server has to handle: plain replies that stop at EOS, think blocks on and off, tool calls,
answers after tool results, JSON replies, Qwen2.5-Coder fill-in-the-middle completions. mlx-lm's
``convert`` then quantizes it to 4 bits, so tests load exactly what ``mlx_lm.load`` would load for a model
pulled from the Hub.

Why it is this small: this CPU's MLX runs float32 matmuls through a reference BLAS at 5-8 GFLOPS, so
the budget is about 300k training tokens. Everything is shaped around that: hidden 64 trains better
in the time than 128 (more steps), the last layer runs only where the loss is taken (``tail_hidden``),
the second core runs a second training process (``scripts.tiny_model.training``), replies are deterministic functions of
the prompt so margins can grow wide, and tool arguments are memorised per tool, not copied.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pathlib
import random
import re
import shutil
import sysconfig
import tempfile
from dataclasses import dataclass

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten

from registry.gguf.pretokenize import (
    byte_level_split,
)  # Qwen2's pipeline, which transformers 5 applies to every qwen2 tokenizer
from scripts.tiny_model.corpus import CHAT_TEMPLATE, SPECIAL_TOKENS, Example, iter_examples
from scripts.tiny_model.fim import iter_fim_examples
from scripts.tiny_model.training import make_batches, make_model, start_worker, train

# Small pure-Python stdlib modules that barely change between Python releases: the tokenizer learns
# general English/code merges from them. Missing files are skipped, so other versions still build.
STDLIB_FILES = (
    "bisect.py", "calendar.py", "colorsys.py", "copy.py", "fnmatch.py", "getopt.py", "heapq.py",
    "json/__init__.py", "pprint.py", "queue.py", "random.py", "sched.py", "shlex.py", "string.py",
    "textwrap.py", "this.py",
)  # fmt: skip


@dataclass(frozen=True)
class TinyConfig:
    """Model and training sizes; every linear input dim is a multiple of 64 so 4-bit convert covers all."""

    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 192
    vocab_size: int = 1536
    max_position_embeddings: int = 4096
    rope_theta: float = 1e6
    num_examples: int = 1800
    num_fim_examples: int = 700
    steps: int = 560
    batch_tokens: int = 512
    learning_rate: float = 5e-3
    warmup: int = 8
    decay_frac: float = 0.35
    logit_scale: float = 0.5


def stdlib_texts() -> list[str]:
    """The fixed, sorted stdlib files the tokenizer trains on (besides the transcripts)."""
    root = pathlib.Path(sysconfig.get_paths()["stdlib"])
    return [(root / f).read_text(encoding="utf-8") for f in sorted(STDLIB_FILES) if (root / f).is_file()]


def train_tokenizer(texts: list[str], vocab_size: int):
    """Byte-level BPE with exactly Qwen2's normalizer and pre-tokenizer, plus the chat/tool/think/FIM specials.

    transformers 5 loads every ``model_type: qwen2`` tokenizer as ``Qwen2Tokenizer``, which rebuilds the
    pipeline from vocab and merges with Qwen2's own split regex, so training with anything else would
    make ``mlx_lm.load`` tokenize differently from what the model was trained on.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    qwen2 = byte_level_split("qwen2")  # NFC, Qwen2's split, then bytes: the GGUF converter's own pipeline
    tok.normalizer = qwen2.normalizer
    tok.pre_tokenizer = qwen2.pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # The trainer does not split out added tokens itself; merges across them would be dead vocabulary.
    specials = re.compile("|".join(map(re.escape, SPECIAL_TOKENS)))
    tok.train_from_iterator([p for text in texts for p in specials.split(text) if p], trainer=trainer)
    return tok


def render(example: Example) -> list[tuple[str, int]]:
    """Render a transcript through the chat template into (text, role) segments.

    Roles: 0 context, 1 an earlier assistant turn, 2 the final completion (everything the model should
    generate after the generation prompt, up to ``<|im_end|>``). Earlier turns are trained too (more
    signal per prompt token) except for their first token: history turns carry no think block, so
    that token would contradict what thinking mode must produce right after ``<|im_start|>assistant``.
    """
    from transformers.utils.chat_template_utils import render_jinja_template

    def run(messages: list[dict], add_generation_prompt: bool) -> str:
        out, _ = render_jinja_template(
            [messages], tools=example.tools, chat_template=CHAT_TEMPLATE,
            add_generation_prompt=add_generation_prompt, enable_thinking=example.enable_thinking,
        )  # fmt: skip
        return out[0]

    prompt = run(example.messages[:-1], True)
    full = run(example.messages, False)
    if not full.startswith(prompt) or not full.endswith("<|im_end|>\n"):
        raise ValueError(f"template does not extend the generation prompt:\n{prompt!r}\n{full!r}")
    segments, pos = [], 0
    for turn in re.finditer(r"<\|im_start\|>assistant\n(.*?<\|im_end\|>)", prompt, re.DOTALL):
        segments += [(prompt[pos : turn.start(1)], 0), (turn.group(1), 1)]
        pos = turn.end(1)
    return [*segments, (prompt[pos:], 0), (full[len(prompt) : -1], 2)]


def encode(tok, rendered: list[list[tuple[str, int]]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Token ids and loss weights per transcript; segments are encoded separately, as at inference."""
    pieces = tok.encode_batch([text for segments in rendered for text, _ in segments])
    out, k = [], 0
    for segments in rendered:
        ids, weights = [], []
        for _, role in segments:
            piece = pieces[k].ids
            k += 1
            ids += piece
            weights += [0.0 if role == 0 or (role == 1 and j == 0) else 1.0 for j in range(len(piece))]
        out.append((np.array(ids, np.int32), np.array(weights, np.float32)))
    return out


def tokenizer_files(tok) -> dict[str, dict]:
    """tokenizer_config.json / generation_config.json contents for the trained tokenizer."""
    ids = {t: tok.token_to_id(t) for t in SPECIAL_TOKENS}
    tokenizer_config = {
        "tokenizer_class": "Qwen2Tokenizer",  # what transformers 5 uses for qwen2 regardless
        "added_tokens_decoder": {
            str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                     "single_word": False, "special": True}
            for t, i in ids.items()
        },
        "additional_special_tokens": [t for t in SPECIAL_TOKENS if t not in ("<|endoftext|>", "<|im_end|>")],
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 4096,
        "split_special_tokens": False,
        "errors": "replace",
    }  # fmt: skip
    generation_config = {
        "bos_token_id": None,
        "eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]],
        "pad_token_id": ids["<|endoftext|>"],
    }
    return {"tokenizer_config.json": tokenizer_config, "generation_config.json": generation_config}


def save_hf(model, args, tok, path: pathlib.Path) -> None:
    """Write the float32 model in Hugging Face layout (what ``mlx_lm.convert`` expects as input)."""
    path.mkdir(parents=True, exist_ok=True)
    config = {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_act": "silu",
        "hidden_size": args.hidden_size, "intermediate_size": args.intermediate_size,
        "num_hidden_layers": args.num_hidden_layers, "num_attention_heads": args.num_attention_heads,
        "num_key_value_heads": args.num_key_value_heads, "max_position_embeddings": args.max_position_embeddings,
        "max_window_layers": args.num_hidden_layers, "use_sliding_window": False, "sliding_window": None,
        "rms_norm_eps": args.rms_norm_eps, "rope_theta": args.rope_theta, "vocab_size": args.vocab_size,
        "tie_word_embeddings": args.tie_word_embeddings, "torch_dtype": "float32", "use_cache": True,
        "attention_dropout": 0.0, "initializer_range": 0.02, "bos_token_id": None,
        "eos_token_id": tok.token_to_id("<|im_end|>"),
    }  # fmt: skip
    files = {"config.json": config, **tokenizer_files(tok)}
    for name, content in files.items():
        (path / name).write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tok.save(str(path / "tokenizer.json"))
    mx.save_safetensors(str(path / "model.safetensors"), dict(tree_flatten(model.parameters())),
                        metadata={"format": "pt"})  # fmt: skip


def quantize_with_mlx_lm(hf_path: pathlib.Path, out_dir: pathlib.Path) -> None:
    """4-bit (group 64, float32 activations) conversion by mlx-lm itself, then a check that it covered
    every layer: ``convert`` silently skips a linear layer whose input dim is not a multiple of 64."""
    from mlx_lm import convert

    with contextlib.redirect_stdout(io.StringIO()):
        convert(str(hf_path), mlx_path=str(out_dir), quantize=True, q_bits=4, q_group_size=64, dtype="float32")
    weights = mx.load(str(out_dir / "model.safetensors"))
    plain = [k for k, v in weights.items() if k.endswith(".weight") and v.ndim == 2 and v.dtype != mx.uint32]
    missing = [k for k in weights if k.endswith(".weight") and k[: -len("weight")] + "scales" not in weights]
    if plain or any(".norm" not in k and "layernorm" not in k for k in missing):
        raise RuntimeError(f"mlx_lm.convert left layers unquantized: {plain or missing}")
    # convert re-saves the tokenizer through transformers; keep the exact files we wrote.
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        shutil.copyfile(hf_path / name, out_dir / name)
    (out_dir / "chat_template.jinja").unlink(missing_ok=True)


def build_tiny_model(out_dir: str | os.PathLike, seed: int = 0, *, steps: int | None = None, log=None) -> pathlib.Path:
    """Build the trained, 4-bit tiny Qwen2 chat model into ``out_dir`` (created, must be empty).

    Deterministic: the same ``seed`` (and ``steps``) gives a byte-identical ``model.safetensors``.
    ``steps`` overrides the training length (a short run is enough to test determinism, not behaviour).
    ``log(step, loss)`` is called after every training step.
    """
    out_dir = pathlib.Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty")
    cfg = TinyConfig() if steps is None else TinyConfig(steps=steps)
    worker = start_worker()
    try:
        rendered = [render(e) for e in iter_examples(seed, cfg.num_examples)]
        tok = train_tokenizer(stdlib_texts() + ["".join(t for t, _ in r) for r in rendered], cfg.vocab_size)
        # Fill-in-the-middle examples (raw, no chat template) come from their own seeded stream and ride
        # along in the chat batches: the tokenizer (its stdlib merges cover the code) and the batches stay.
        # Any draw teaches FIM, but the shared weights move: stream seed + 3 (with 700 examples) is the one
        # of ten tried that kept tool calls 48/48 and structured output's stop rate (see the README).
        fim = [[(p, 0), (c, 2)] for p, c in iter_fim_examples(seed + 3, cfg.num_fim_examples)]
        batches = make_batches(encode(tok, rendered), cfg.batch_tokens, random.Random(seed), encode(tok, fim))
        mx.random.seed(seed)
        model, args = make_model(cfg, tok.get_vocab_size())
        # mlx-lm's swiglu is mx.compile'd: a cold compile costs seconds, fusion buys little at this size.
        mx.disable_compile()
        try:
            train(model, batches, cfg, worker, log)
        finally:
            if os.environ.get("MLX_DISABLE_COMPILE", "0") in ("", "0"):
                mx.enable_compile()
        worker[0].join(timeout=10)
    finally:
        if worker[0].is_alive():
            worker[0].terminate()
    with tempfile.TemporaryDirectory() as tmp:
        save_hf(model, args, tok, pathlib.Path(tmp) / "hf")
        quantize_with_mlx_lm(pathlib.Path(tmp) / "hf", pathlib.Path(tmp) / "q")
        out_dir.mkdir(parents=True, exist_ok=True)
        for item in sorted((pathlib.Path(tmp) / "q").iterdir()):
            shutil.move(str(item), out_dir / item.name)
    return out_dir
