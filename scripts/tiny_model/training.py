"""The tiny model's training loop: MLX, float32, deterministic, on both CPU cores.

A second process (spawned, so it owns its own MLX state) trains an identical replica on half of each batch;
the two exchange gradients every step and a checksum confirms they stay identical. The last layer runs
only where the loss is taken (``tail_hidden``), which is checked to equal the full forward pass.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten, tree_map, tree_unflatten

if TYPE_CHECKING:
    from scripts.tiny_model.build import TinyConfig


def pad_rows(data: list[tuple[np.ndarray, np.ndarray]], rows: list[int]) -> tuple[np.ndarray, ...]:
    """One chunk: right-padded inputs, per-row start of the trained window, its targets and weights.

    Position ``starts[r] + i`` predicts ``targets[r, i]`` with loss weight ``mask[r, i]``; the window
    runs from a row's first trained token to its end.
    """
    firsts = [int(np.argmax(data[i][1] > 0)) for i in rows]
    lengths = [len(data[i][0]) for i in rows]
    width = max(n - f for n, f in zip(lengths, firsts, strict=True))
    x = np.zeros((len(rows), max(lengths) - 1), np.int32)
    y = np.zeros((len(rows), width), np.int32)
    m = np.zeros((len(rows), width), np.float32)
    for r, (i, n, f) in enumerate(zip(rows, lengths, firsts, strict=True)):
        ids, weights = data[i]
        x[r, : n - 1] = ids[:-1]
        y[r, : n - f], m[r, : n - f] = ids[f:], weights[f:]
    return x, np.array(firsts, np.int32) - 1, y, m


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


def make_batches(
    data: list[tuple[np.ndarray, np.ndarray]],
    batch_tokens: int,
    rng: random.Random,
    extra: list[tuple[np.ndarray, np.ndarray]] = (),  # type: ignore[assignment]
) -> list[list]:
    """Seeded random batches of about ``batch_tokens`` tokens, each cut into length-sorted chunks.

    Every batch mixes all kinds of transcripts (homogeneous batches make the tiny model oscillate),
    while chunking rows of similar length keeps padding low. Rows are never packed together: the model
    must only ever see one conversation in its context. ``extra`` rows (short fill-in-the-middle
    examples) are dealt round-robin into the batches ``data`` makes, so adding them leaves the
    batches of ``data`` and their order as they were.
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
    for k in range(len(extra)):
        batches[k % len(batches)].append(len(data) + k)
    data = [*data, *extra]
    out = []
    for rows in batches:
        rows.sort(key=lambda i: len(data[i][0]))
        chunks, chunk = [], []
        for i in rows:
            if chunk and (len(chunk) + 1) * len(data[i][0]) > batch_tokens // 4:
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
        max_position_embeddings=cfg.max_position_embeddings, rope_theta=cfg.rope_theta, tie_word_embeddings=True,
    )  # fmt: skip
    model = qwen2.Model(args)
    model.set_dtype(mx.float32)
    return model, args


class Replica:
    """One data-parallel copy of the training state: model, AdamW, and a gradient function."""

    def __init__(self, model, cfg: TinyConfig) -> None:
        decay = max(int(cfg.steps * cfg.decay_frac), 1)  # warmup, constant, then linear decay
        schedule = optim.join_schedules(
            [optim.linear_schedule(cfg.learning_rate * 0.1, cfg.learning_rate, cfg.warmup),
             lambda _: cfg.learning_rate,
             optim.linear_schedule(cfg.learning_rate, cfg.learning_rate * 0.02, decay)],
            [cfg.warmup, cfg.steps - decay],
        )  # fmt: skip
        self.model, self.opt = model, optim.AdamW(learning_rate=schedule, betas=[0.9, 0.98], weight_decay=0.01)
        embed = model.model.embed_tokens

        def loss_fn(mdl, x, starts, targets, mask, denom):
            # Trained at temperature 1/logit_scale: greedy logit margins come out that much wider.
            logits = embed.as_linear(tail_hidden(mdl, x, starts, targets.shape[1])) * cfg.logit_scale
            return (nn.losses.cross_entropy(logits, targets) * mask).sum() / denom

        self.grad_fn = nn.value_and_grad(model, loss_fn)

    def grads(self, chunks: list[tuple], denom: float) -> tuple[float, list[np.ndarray]]:
        """Loss and flat gradients (numpy, in ``tree_flatten`` order) of this replica's chunks."""
        loss, total = mx.array(0.0), None
        for chunk in chunks:
            value, grads = self.grad_fn(self.model, *(mx.array(a) for a in chunk), mx.array(denom))
            loss, total = loss + value, grads if total is None else tree_map(mx.add, total, grads)
        flat = [v for _, v in tree_flatten(total)]
        mx.eval(loss, flat)
        return loss.item(), [np.array(v) for v in flat]

    def apply(self, first: list[np.ndarray], second: list[np.ndarray]) -> None:
        """Sum both replicas' gradients in a fixed order and step, so both copies stay bit-identical."""
        names = [k for k, _ in tree_flatten(self.model.trainable_parameters())]
        grads = tree_unflatten([(k, mx.array(a) + mx.array(b)) for k, a, b in zip(names, first, second, strict=True)])
        self.opt.update(self.model, grads)
        mx.eval(self.model.parameters(), self.opt.state)

    def checksum(self) -> float:
        return sum(float(mx.sum(v * v).item()) for _, v in tree_flatten(self.model.parameters()))


def split_batches(batches: list[list[tuple]]) -> list[tuple[list, list, float]]:
    """Per step: the chunks of each of the two replicas (balanced by padded tokens) and the loss denominator."""
    out = []
    for chunks in batches:
        halves: tuple[list, list] = ([], [])
        for chunk in sorted(chunks, key=lambda c: -c[0].size):
            min(halves, key=lambda h: sum(c[0].size for c in h)).append(chunk)
        out.append((*halves, float(sum(c[3].sum() for c in chunks))))
    return out


def _worker(conn) -> None:
    """Second training process: the replica that takes the second half of every batch."""
    mx.disable_compile()
    cfg, vocab_size, params, steps = conn.recv()
    model, _ = make_model(cfg, vocab_size)
    model.update(tree_unflatten([(k, mx.array(v)) for k, v in params]))
    replica = Replica(model, cfg)
    for step in range(cfg.steps):
        _, chunks, denom = steps[step % len(steps)]
        loss, mine = replica.grads(chunks, denom)
        conn.send((loss, mine))
        replica.apply(conn.recv(), mine)
    conn.send(replica.checksum())


def start_worker():
    """Spawn the second training process early, so its imports overlap the data preparation."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_worker, args=(child,), daemon=True)
    process.start()
    return process, parent


def train(model, batches: list[list[tuple]], cfg: TinyConfig, worker=None, log=None) -> list[float]:
    """AdamW on assistant tokens only, data-parallel over this process and ``worker`` (``start_worker``).

    MLX runs small CPU ops in one process far better than in two threads of one process (two streams
    gave 1.3x, two processes 2x), so the second CPU core gets its own process; the replicas exchange
    gradients every step through a pipe and apply identical updates. Without a worker, one process
    runs both halves.
    """
    steps = split_batches(batches)
    replica = Replica(model, cfg)
    if worker is not None:
        params = [(k, np.array(v)) for k, v in tree_flatten(model.parameters())]
        worker[1].send((cfg, model.args.vocab_size, params, steps))
    losses = []
    for step in range(cfg.steps):
        first, second, denom = steps[step % len(steps)]
        loss, mine = replica.grads(first, denom)
        if worker is None:
            other_loss, other = replica.grads(second, denom)
        else:
            other_loss, other = worker[1].recv()
            worker[1].send(mine)
        replica.apply(mine, other)
        losses.append(loss + other_loss)
        if log is not None:
            log(step, losses[-1])
    if worker is not None and worker[1].recv() != replica.checksum():
        raise RuntimeError("training replicas diverged")
    return losses
