"""Build a tiny but real, trained, 4-bit MLX chat model in well under a minute on two CPU cores.

The model is a genuine Qwen2 architecture with a byte-level BPE tokenizer and a Qwen3-style ChatML
template (tools, <think>), trained with MLX on synthetic transcripts (``registry.tiny_corpus``) until
greedy decoding shows the behaviours a server has to handle: plain replies that stop at EOS, tool
calls, think blocks, JSON replies. It is then quantized by mlx-lm's own ``convert``, so what tests
load is exactly what ``mlx_lm.load`` would load for a model pulled from the Hub.
"""

from __future__ import annotations

import pathlib
import random
import sysconfig
from dataclasses import dataclass

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_map

from registry.tiny_corpus import CHAT_TEMPLATE, SPECIAL_TOKENS, Example

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

    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 256
    vocab_size: int = 1536
    max_position_embeddings: int = 4096
    num_examples: int = 2400
    steps: int = 120
    batch_tokens: int = 4096
    learning_rate: float = 3e-3
    warmup: int = 8
    clip: float = 0.0


def stdlib_texts() -> list[str]:
    """The fixed, sorted stdlib files the tokenizer trains on (besides the transcripts)."""
    root = pathlib.Path(sysconfig.get_paths()["stdlib"])
    return [(root / f).read_text(encoding="utf-8") for f in sorted(STDLIB_FILES) if (root / f).is_file()]


def train_tokenizer(texts: list[str], vocab_size: int):
    """Byte-level BPE (GPT-2 style pre-tokenizer and decoder) with the chat/tool/think/FIM specials."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def render(example: Example) -> tuple[str, str]:
    """Split a transcript into (generation prompt, target completion ending in <|im_end|>) via the template."""
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
    return prompt, full[len(prompt) : -1]


def encode(tok, pairs: list[tuple[str, str]]) -> list[tuple[np.ndarray, int]]:
    """Token ids of prompt+completion (encoded separately, as at inference) and the prompt length."""
    prompts = tok.encode_batch([p for p, _ in pairs])
    completions = tok.encode_batch([c for _, c in pairs])
    return [(np.array(p.ids + c.ids, dtype=np.int32), len(p.ids)) for p, c in zip(prompts, completions)]


def pad_rows(data: list[tuple[np.ndarray, int]], rows: list[int]) -> tuple[np.ndarray, ...]:
    """One chunk: right-padded inputs, per-row completion start, and the completion's targets and mask.

    Position ``starts[r] + i`` predicts ``targets[r, i]``; ``mask`` is 0 past a row's completion.
    """
    lengths = [len(data[i][0]) for i in rows]
    starts = np.array([data[i][1] - 1 for i in rows], np.int32)
    width = max(n - s - 1 for n, s in zip(lengths, starts))
    x = np.zeros((len(rows), max(lengths) - 1), np.int32)
    y = np.zeros((len(rows), width), np.int32)
    m = np.zeros((len(rows), width), np.float32)
    for r, (i, n, s) in enumerate(zip(rows, lengths, starts)):
        ids = data[i][0]
        x[r, : n - 1] = ids[:-1]
        y[r, : n - 1 - s] = ids[s + 1 :]
        m[r, : n - 1 - s] = 1.0
    return x, starts, y, m


def tail_hidden(model, x: mx.array, starts: mx.array, width: int) -> mx.array:
    """Final hidden states at positions ``starts[b] + i`` (i < width), equal to ``model.model(x)`` there.

    Only the completion is trained, so the last layer runs its queries, MLP and norm on those positions
    alone (keys/values still come from every position); with two layers this saves about a third of a
    training step on the CPU.
    """
    inner = model.model
    h = inner.embed_tokens(x)
    for layer in inner.layers[:-1]:
        h = layer(h, "causal")
    last, (batch, length, _) = inner.layers[-1], h.shape
    attn = last.self_attn
    pos = mx.minimum(starts[:, None] + mx.arange(width)[None], length - 1)
    normed = last.input_layernorm(h)
    h_tail = mx.take_along_axis(h, pos[..., None], axis=1)
    q = attn.q_proj(mx.take_along_axis(normed, pos[..., None], axis=1))
    q = attn.rope(q.reshape(batch, width, attn.n_heads, -1).transpose(0, 2, 1, 3), offset=starts)
    k = attn.k_proj(normed).reshape(batch, length, attn.n_kv_heads, -1).transpose(0, 2, 1, 3)
    v = attn.v_proj(normed).reshape(batch, length, attn.n_kv_heads, -1).transpose(0, 2, 1, 3)
    mask = mx.arange(length)[None, None, None, :] <= pos[:, None, :, None]
    out = mx.fast.scaled_dot_product_attention(q, attn.rope(k), v, scale=attn.scale, mask=mask)
    h_tail = h_tail + attn.o_proj(out.transpose(0, 2, 1, 3).reshape(batch, width, -1))
    h_tail = h_tail + last.mlp(last.post_attention_layernorm(h_tail))
    return inner.norm(h_tail)


def make_batches(data: list[tuple[np.ndarray, int]], batch_tokens: int, rng: random.Random) -> list[list]:
    """Seeded random batches of about ``batch_tokens`` tokens, each cut into length-sorted chunks.

    Every batch mixes all kinds of transcripts (homogeneous batches make the tiny model oscillate),
    while chunking rows of similar length keeps padding low. Rows are never packed together: the model
    must only ever see one conversation in its context.
    """
    order = list(range(len(data)))
    rng.shuffle(order)
    batches, cur, used = [], [], 0
    for i in order:
        cur.append(i)
        used += len(data[i][0])
        if used >= batch_tokens:
            batches.append(cur)
            cur, used = [], 0
    out = []
    for rows in batches:
        rows.sort(key=lambda i: len(data[i][0]))
        chunks, chunk = [], []
        for i in rows:
            if chunk and (len(chunk) + 1) * len(data[i][0]) > batch_tokens // 3:
                chunks.append(pad_rows(data, chunk))
                chunk = []
            chunk.append(i)
        chunks.append(pad_rows(data, chunk))
        out.append(chunks)
    return out


def make_model(cfg: TinyConfig, vocab_size: int):
    """A float32 Qwen2 from mlx-lm's own model code, randomly initialised by the (seeded) MLX RNG."""
    from mlx_lm.models import qwen2

    args = qwen2.ModelArgs(
        model_type="qwen2", hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_layers,
        intermediate_size=cfg.intermediate_size, num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads, rms_norm_eps=1e-6, vocab_size=vocab_size,
        max_position_embeddings=cfg.max_position_embeddings, rope_theta=10000.0, tie_word_embeddings=True,
    )  # fmt: skip
    model = qwen2.Model(args)
    model.set_dtype(mx.float32)
    return model, args


def train(model, batches: list[tuple], cfg: TinyConfig, log=None) -> list[float]:
    """AdamW on assistant tokens only; each batch is split across two CPU streams that run in parallel.

    The lm-head projection is applied only at the target positions (a third or less of all tokens),
    which with the CPU's slow reference BLAS roughly halves the cost of a step.
    """
    schedule = optim.join_schedules(
        [optim.linear_schedule(cfg.learning_rate * 0.1, cfg.learning_rate, cfg.warmup),
         optim.cosine_decay(cfg.learning_rate, max(cfg.steps - cfg.warmup, 1), cfg.learning_rate * 0.05)],
        [cfg.warmup],
    )  # fmt: skip
    opt = optim.AdamW(learning_rate=schedule, betas=[0.9, 0.98], weight_decay=0.01)
    embed = model.model.embed_tokens

    def loss_fn(mdl, x, starts, targets, mask, denom):
        logits = embed.as_linear(tail_hidden(mdl, x, starts, targets.shape[1]))
        return (nn.losses.cross_entropy(logits, targets) * mask).sum() / denom

    grad_fn = nn.value_and_grad(model, loss_fn)
    streams = [mx.new_stream(mx.cpu), mx.new_stream(mx.cpu)]
    losses = []
    for step in range(cfg.steps):
        chunks = batches[step % len(batches)]
        denom = mx.array(float(sum(c[3].sum() for c in chunks)))
        load = [0, 0]
        results = []
        for chunk in sorted(chunks, key=lambda c: -c[0].size):
            s = load.index(min(load))  # balance padded tokens over the two streams
            load[s] += chunk[0].size
            with mx.stream(streams[s]):
                results.append(grad_fn(model, *(mx.array(a) for a in chunk), denom))
        loss = sum(r[0] for r in results)
        grads = results[0][1]
        for _, g in results[1:]:
            grads = tree_map(mx.add, grads, g)
        if cfg.clip:
            grads, _ = optim.clip_grad_norm(grads, cfg.clip)
        opt.update(model, grads)
        mx.eval(loss, model.parameters(), opt.state)
        losses.append(loss.item())
        if log is not None:
            log(step, losses[-1])
    return losses
