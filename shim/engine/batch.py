"""Continuous batching on one loaded model: mlx-lm's BatchGenerator plus a prefix cache of KV caches.

Every request of a model decodes in the model's one BatchGenerator: a new request joins at the next step, a
finished or abandoned one leaves without disturbing the others, and each keeps its own sampler, logits
processors and per-token pipeline (runner.Completion: stops, detokenizer, thinking, tool calls). The batch
knows nothing about HTTP: it talks to a Listener (the engine's job) that takes events and says when its
client has gone.

A finished sequence leaves its KV cache in a bounded LRU keyed by token prefix (mlx-lm's LRUPromptCache), so
the next turn of a chat prefills only its new tokens; a diverging prefix is trimmed to the common part. The
cache maps exact token prefixes to the keys and values those very tokens produce, so nothing of one
conversation can surface in another: a shared prefix (a system prompt) yields the same numbers either way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import mlx.core as mx
from mlx_lm.generate import BatchGenerator
from mlx_lm.models.cache import LRUPromptCache, trim_prompt_cache

from shim.engine.runner import Completion
from shim.engine.types import Done, EngineError, Piece

log = logging.getLogger("mlx_shim")

UNLIMITED = 1 << 40  # tokens: "until the answer ends", for sequences without a num_predict limit
_KEY = "model"  # one LRUPromptCache per ModelBatch, so one model key inside it


class Listener(Protocol):
    cancelled: threading.Event

    def put(self, event: Piece | Done | EngineError | None) -> None: ...


@dataclass
class Sequence:
    """One request in the batch: its pipeline, where its events go, and the tokens its KV cache holds."""

    listener: Listener
    completion: Completion
    sampler: Callable[[mx.array], mx.array]
    processors: list[Callable[[mx.array, mx.array], mx.array]]
    exclusive: bool  # a seeded sampling request runs alone: its output must not depend on its neighbours
    shift: bool
    num_ctx: int
    num_keep: int
    load_ns: int
    context: list[int] = field(default_factory=list)


class ModelBatch:
    def __init__(self, model: Any, *, num_parallel: int, cache_bytes: int) -> None:
        self.num_parallel = num_parallel
        self.generator = BatchGenerator(model, completion_batch_size=num_parallel, prefill_batch_size=num_parallel)
        self.sequences: dict[int, Sequence] = {}
        self.prompt_cache = LRUPromptCache(max_size=64, max_bytes=cache_bytes) if cache_bytes > 0 else None
        self.kv_bytes = 0  # the KV caches of running sequences plus the prefix cache, refreshed as they change
        self._steps = 0

    def close(self) -> None:
        self.generator.close()
        self.sequences.clear()
        self.prompt_cache = None

    def has_room(self, exclusive: bool) -> bool:
        if not self.sequences:
            return True
        if exclusive or any(s.exclusive for s in self.sequences.values()):
            return False
        return len(self.sequences) < self.num_parallel

    def admit(self, seq: Sequence) -> None:
        seq.context = list(seq.completion.prompt)
        self._insert(seq, seq.context)
        self._measure()

    def _insert(self, seq: Sequence, tokens: list[int]) -> None:
        """Queue `tokens` for prefill, starting from the longest cached prefix of them."""
        cache, rest = None, tokens
        if self.prompt_cache is not None:
            cache, rest = self.prompt_cache.fetch_nearest_cache(_KEY, tokens)
            if cache is not None and not rest:  # an exact hit: recompute the last position for its logits
                trim_prompt_cache(cache, 1)
                rest = tokens[-1:]
        left = seq.completion.limit - len(seq.completion.generated) if seq.completion.limit > 0 else UNLIMITED
        (uid,) = self.generator.insert(
            [rest],
            max_tokens=[left],
            caches=[cache],
            all_tokens=[tokens[: len(tokens) - len(rest)]],
            samplers=[seq.sampler],
            logits_processors=[seq.processors],
        )
        self.sequences[uid] = seq

    def step(self) -> list[Sequence]:
        """Drop sequences whose clients left, decode one token for every running sequence (prefilling new
        ones a chunk at a time), and return the sequences that ended, their Done already sent."""
        ended = []
        gone = [uid for uid, seq in self.sequences.items() if seq.listener.cancelled.is_set()]
        for uid in gone:
            seq = self.sequences.pop(uid)
            self.generator.remove([uid])
            log.info("generation cancelled: client disconnected")
            seq.listener.put(None)
            ended.append(seq)
        if not self.sequences:
            self._measure()
            return ended
        for response in self.generator.next()[1]:
            seq = self.sequences.get(response.uid)
            if seq is None:
                continue
            seq.context.append(response.token)
            finished = seq.completion.feed(response.token)
            if response.finish_reason is not None:  # the generator already let it go (its max_tokens)
                del self.sequences[response.uid]
                self._keep((response.prompt_cache, response.all_tokens))
                finished = True
            elif finished:
                del self.sequences[response.uid]
                self._keep(self.generator.remove([response.uid], return_prompt_caches=True).get(response.uid))
            elif seq.shift and len(seq.context) >= seq.num_ctx:
                self._shift(response.uid, seq)
            if finished:
                seq.listener.put(replace(seq.completion.finish(), load_duration=seq.load_ns))
                seq.listener.put(None)
                ended.append(seq)
        self._steps += 1
        if ended or self._steps % 32 == 0:
            self._measure()
        return ended

    def fail(self, error: EngineError) -> list[Sequence]:
        """After an MLX error the batch's state is unknown: end every sequence with the error (the engine
        then replaces this batch with a fresh one)."""
        ended = list(self.sequences.values())
        self.sequences.clear()
        for seq in ended:
            seq.listener.put(error)
            seq.listener.put(None)
        return ended

    def _shift(self, uid: int, seq: Sequence) -> None:
        """The context is full: like Ollama, keep the first num_keep tokens, drop half of the rest, go on.
        MLX cannot re-rotate cached keys, so the shortened context is prefilled again."""
        self.generator.remove([uid])
        del self.sequences[uid]
        keep = min(seq.num_keep, len(seq.context) - 1)
        discard = (len(seq.context) - keep) // 2
        seq.context = seq.context[:keep] + seq.context[keep + discard :]
        self._insert(seq, seq.context)

    def _keep(self, entry: tuple[list[Any], list[int]] | None) -> None:
        if self.prompt_cache is None or entry is None or not entry[1]:
            return
        cache, tokens = entry
        self.prompt_cache.insert_cache(_KEY, list(tokens), cache)

    def _measure(self) -> None:
        cached = self.prompt_cache.nbytes if self.prompt_cache is not None else 0
        self.kv_bytes = self.generator.prompt_cache_nbytes + cached
