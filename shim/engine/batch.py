"""Continuous batching on one loaded model: mlx-lm's BatchGenerator plus a prefix cache of KV caches.

Concurrent requests of a model decode together in its one BatchGenerator (a lone one on generate_step, see
ModelBatch): a new request joins at the next step, a finished or abandoned one leaves without disturbing the
others, and each keeps its own sampler, logits processors and per-token pipeline (runner.Completion: stops,
detokenizer, thinking, tool calls). The batch knows nothing about HTTP: it talks to a Listener (the engine's
job) that takes events and says when its client has gone.

A finished sequence leaves its KV cache in a bounded LRU keyed by token prefix (mlx-lm's LRUPromptCache), so
the next turn of a chat prefills only its new tokens; a diverging prefix is trimmed to the common part. The
cache maps exact token prefixes to the keys and values those very tokens produce, so nothing of one
conversation can surface in another: a shared prefix (a system prompt) yields the same numbers either way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import mlx.core as mx

from shim.engine.mlx_lm_api import (
    BatchGenerator,
    KVCache,
    LRUPromptCache,
    generate_step,
    make_prompt_cache,
    trim_prompt_cache,
)
from shim.engine.prefill import Pacer, PromptFill, pace
from shim.engine.runner import Completion
from shim.engine.stats import PromptCacheCounters
from shim.engine.types import Done, Piece
from shim.errors import ShimError

log = logging.getLogger("mlx_shim")

UNLIMITED = 1 << 40  # tokens: "until the answer ends", for sequences without a num_predict limit
_KEY = "model"  # one LRUPromptCache per ModelBatch, so one model key inside it
SOLO = -1  # the key in ModelBatch.sequences of a sequence decoding alone through generate_step
Processor = Callable[[mx.array, mx.array], mx.array]
Cached = tuple[list[Any] | None, list[int]]  # a KV cache of a prefix (or none) and the tokens it lacks


class Listener(Protocol):
    cancelled: threading.Event

    def put(self, event: Piece | Done | ShimError | None) -> None: ...


@dataclass
class Sequence:
    """One request in the batch: its pipeline, where its events go, and the tokens its KV cache holds."""

    listener: Listener
    completion: Completion
    sampler: Callable[[mx.array], mx.array]
    processors: list[Processor]
    exclusive: bool  # a seeded sampling request runs alone: its output must not depend on its neighbours
    stateful: bool  # a processor keeps state per token (the format grammar): the sequence never changes path
    shift: bool
    num_ctx: int
    num_keep: int
    load_ns: int
    context: list[int] = field(default_factory=list)
    reusable: bool = True  # its KV cache may serve later prompts (not one holding image features)


@dataclass
class _Solo:
    """A sequence decoding alone: its prompt prefilled a slice per step (`fill`), then mlx-lm's generate_step
    computes the last prompt token's logits and decodes (`steps`), on the KV cache both fill."""

    fill: PromptFill
    cache: list[Any]
    steps: Generator[tuple[int, mx.array], None, None] | None = None
    started: bool = False  # generate_step has run once: the cache holds every token of the context


class ModelBatch:
    """A lone sequence decodes on mlx-lm's single-sequence generate_step, which is about 12% faster than a
    BatchGenerator holding one sequence (no batch mask, less per-step bookkeeping; measured in-process on the
    tiny model). When a second one arrives, the lone one moves into the BatchGenerator with its KV cache and
    goes on there; the others join it."""

    def __init__(
        self,
        model: Any,
        *,
        num_parallel: int,
        cache_bytes: int,
        prefill_group: int = 8,
        counters: PromptCacheCounters | None = None,
    ) -> None:
        self.model = model
        self.counters = counters or PromptCacheCounters()  # the engine's, shared by its batches (/metrics)
        self.solo: _Solo | None = None
        self.num_parallel = num_parallel
        # New sequences prefill `prefill_group` at a time, with a decode step between groups, or more where one
        # prefill slice takes them all (prefill.pace).
        self.prefill_group = max(min(prefill_group, num_parallel), 1)
        self.generator = BatchGenerator(
            model, completion_batch_size=num_parallel, prefill_batch_size=self.prefill_group
        )
        self.sequences: dict[int, Sequence] = {}
        self.prompt_cache = LRUPromptCache(max_size=64, max_bytes=cache_bytes) if cache_bytes > 0 else None
        self.kv_bytes = 0  # the KV caches of running sequences plus the prefix cache, refreshed as they change
        self._steps = 0
        self.pacer = Pacer()
        # Sends the pieces this step has made so far (the engine's Wakeups.flush); called before MLX is made to
        # wait for the step mlx-lm has already queued, so the other streams' tokens do not wait with it.
        self.flush: Callable[[], None] = lambda: None

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
        if self.solo is not None:
            self._join_batch()
        if self.sequences or seq.stateful:
            self._insert(seq, seq.context)
        else:
            self._go_solo(seq, seq.context)
        self._measure()

    def _cached(self, tokens: list[int]) -> Cached:
        """The KV cache of the longest cached prefix of `tokens` (a copy) and the tokens it lacks (never none:
        the last position is recomputed for its logits)."""
        if self.prompt_cache is None:
            return None, tokens
        cache, rest = self.prompt_cache.fetch_nearest_cache(_KEY, tokens)
        if cache is not None and not rest:
            trim_prompt_cache(cache, 1)
            rest = tokens[-1:]
        log.debug("prompt cache: %d of %d prompt tokens reused", len(tokens) - len(rest), len(tokens))
        if cache is not None:
            self.counters.hits += 1
            self.counters.tokens += len(tokens) - len(rest)
        return cache, rest

    def _insert(self, seq: Sequence, tokens: list[int], cached: Cached | None = None) -> None:
        """Queue `tokens` for prefill in the BatchGenerator, from the longest cached prefix of them."""
        cache, rest = cached or self._cached(tokens)
        seq.completion.restart()
        left = seq.completion.limit - len(seq.completion.generated) if seq.completion.limit > 0 else UNLIMITED
        (uid,) = self.generator.insert(
            [rest],
            max_tokens=[left],
            caches=None if cache is None else [cache],  # None: mlx-lm makes a fresh cache
            all_tokens=[tokens[: len(tokens) - len(rest)]],
            samplers=[seq.sampler],
            logits_processors=[seq.processors],
        )
        self.sequences[uid] = seq

    def _go_solo(self, seq: Sequence, tokens: list[int]) -> None:
        """Decode alone: the tokens the prefix cache lacks are prefilled a slice per step (all but the last)."""
        cache, rest = self._cached(tokens)
        seq.completion.restart()
        if cache is None:
            cache = make_prompt_cache(self.model)
        self.solo = _Solo(PromptFill(self.model, cache, rest[:-1], self.pacer), cache)
        self.sequences[SOLO] = seq

    def _solo_steps(self, seq: Sequence) -> Generator[tuple[int, mx.array], None, None]:
        """generate_step from the cache the prefill filled: given the last token, it computes that token's
        logits in its first step."""
        assert self.solo is not None
        prefix = seq.context[:-1]
        processors = seq.processors
        if prefix and processors:  # generate_step shows processors only the tokens it was given
            processors = [_after(mx.array(prefix), p) for p in processors]
        return generate_step(
            mx.array(seq.context[-1:]), self.model, max_tokens=-1, sampler=seq.sampler,
            logits_processors=processors, prompt_cache=self.solo.cache,
        )  # fmt: skip

    def _join_batch(self) -> None:
        """The lone sequence moves into the BatchGenerator: its cache holds every token it has (the last
        one included), so the last one is taken back out and fed again there for the next token's logits."""
        assert self.solo is not None
        seq, cache, started = self.sequences.pop(SOLO), self.solo.cache, self.solo.started
        pending = self.solo.fill.pending
        self._end_solo()
        if started:
            trim_prompt_cache(cache, 1)
            self._insert(seq, seq.context, (cache, seq.context[-1:]))
        else:  # mid-prefill: the batch goes on from the tokens the cache already holds
            self._insert(seq, seq.context, (cache, pending + seq.context[-1:]))

    def _end_solo(self) -> None:
        if self.solo is not None:
            if self.solo.steps is not None:
                self.solo.steps.close()
            self.solo = None

    def step(self) -> list[Sequence]:
        """Drop sequences whose clients left, decode one token for every running sequence (prefilling new
        ones a chunk at a time), and return the sequences that ended, their Done already sent."""
        ended = []
        gone = [uid for uid, seq in self.sequences.items() if seq.listener.cancelled.is_set()]
        for uid in gone:
            seq = self.sequences.pop(uid)
            if uid == SOLO:
                self._end_solo()
            else:
                self.generator.remove([uid])
            log.info("generation cancelled: client disconnected")
            seq.listener.put(None)
            ended.append(seq)
        if not self.sequences:
            self._measure()
            return ended
        if self.solo is not None:
            return ended + self._solo_step()
        kept: list[tuple[list[Any] | None, list[int] | None] | None] = []  # the ended sequences' caches
        stopped: list[int] = []  # sequences that ended on a stop: still in the generator, their caches with them
        dropped: list[int] = []  # the same, whose caches are not kept
        for response in self._next():
            seq = self.sequences.get(response.uid)
            if seq is None:
                continue
            seq.context.append(response.token)
            finished = seq.completion.feed(response.token, response.logprobs)
            if response.finish_reason is not None or finished:
                del self.sequences[response.uid]
                keep = seq.reusable and self.prompt_cache is not None  # else taking its cache out only waits
                if response.finish_reason is not None:  # the generator already let it go (its max_tokens)
                    if keep:
                        kept.append((response.prompt_cache, response.all_tokens))
                else:
                    (stopped if keep else dropped).append(response.uid)
                finished = True
            elif seq.shift and len(seq.context) >= seq.num_ctx:
                self._shift(response.uid, seq)
            if finished:
                self._finish(seq)
                ended.append(seq)
        if dropped:
            self.generator.remove(dropped)
        if kept or stopped:
            # Taking a cache out waits for the step mlx-lm has queued (one MLX stream, in order): this step's
            # pieces go out first (measured on the CPU: a stream ending on a stop held the others' tokens for
            # that whole next step, 90 ms on the tiny model beside an image request).
            self.flush()
            if stopped:
                caches = self.generator.remove(stopped, return_prompt_caches=True)
                kept += [caches.get(uid) for uid in stopped]
            for entry in kept:
                self._keep(entry)
        self._steps += 1
        if ended or self._steps % 32 == 0:
            self._measure()
        return ended

    def prefilling(self) -> int:
        """The sequences still waiting for their first token."""
        return sum(not seq.completion.generated for seq in self.sequences.values())

    def _next(self) -> list[Any]:
        """The BatchGenerator's next step; while prompts wait for their first token its prefill chunk is paced
        to take about prefill.SLICE_SECONDS, from the rate its last chunks ran at."""
        if not self.prefilling():
            return self.generator.next()[1]
        shape, full = pace(self.generator, self.pacer, self.prefill_group)
        with self.generator.stats() as stats:
            responses = self.generator.next()[1]
        self.pacer.record(stats.prompt_tokens, stats.prompt_time, shape, full)
        return responses

    def _solo_step(self) -> list[Sequence]:
        assert self.solo is not None
        seq = self.sequences[SOLO]
        if not self.solo.fill.done:
            self.solo.fill.advance()
            if not self.solo.fill.done:
                return []
        if self.solo.steps is None:
            self.solo.steps = self._solo_steps(seq)
        token, logprobs = next(self.solo.steps)
        self.solo.started = True
        seq.context.append(token)
        self._steps += 1
        if seq.completion.feed(token, logprobs):
            cache = self.solo.cache
            del self.sequences[SOLO]
            self._end_solo()
            self._finish(seq)
            self.flush()  # the answer's end goes out before its cache is kept, which waits for the queued step
            self._keep((cache, seq.context))
            self._measure()
            return [seq]
        if seq.shift and len(seq.context) >= seq.num_ctx:
            del self.sequences[SOLO]
            self._end_solo()
            self._go_solo(seq, _shifted(seq))
        if self._steps % 32 == 0:
            self._measure()
        return []

    @staticmethod
    def _finish(seq: Sequence) -> None:
        seq.listener.put(replace(seq.completion.finish(), load_duration=seq.load_ns))
        seq.listener.put(None)

    def fail(self, error: ShimError) -> list[Sequence]:
        """After an MLX error the batch's state is unknown: end every sequence with the error (the engine
        then replaces this batch with a fresh one)."""
        ended = list(self.sequences.values())
        self.sequences.clear()
        self.solo = None
        for seq in ended:
            seq.listener.put(error)
            seq.listener.put(None)
        return ended

    def _shift(self, uid: int, seq: Sequence) -> None:
        """The context is full: like Ollama, keep the first num_keep tokens, drop half of the rest, go on.
        MLX cannot re-rotate cached keys, so the shortened context is prefilled again."""
        self.generator.remove([uid])
        del self.sequences[uid]
        self._insert(seq, _shifted(seq))

    def _keep(self, entry: tuple[list[Any] | None, list[int] | None] | None) -> None:
        if self.prompt_cache is None or entry is None:
            return
        cache, tokens = entry
        if cache is None or not tokens:
            return
        self.prompt_cache.insert_cache(_KEY, list(tokens), _compact(cache))

    def _measure(self) -> None:
        cached = self.prompt_cache.nbytes if self.prompt_cache is not None else 0
        solo = sum(c.nbytes for c in self.solo.cache) if self.solo is not None else 0
        self.kv_bytes = self.generator.prompt_cache_nbytes + cached + solo


def _shifted(seq: Sequence) -> list[int]:
    """Ollama's context shift: keep the first num_keep tokens, drop half of the rest. The newest token (the next
    step's input) always stays and, from two tokens on, at least one goes: a num_keep as long as the context
    would otherwise shift at every token and never shorten it."""
    keep = max(min(seq.num_keep, len(seq.context) - 2), 0)
    discard = (len(seq.context) - keep) // 2
    seq.context = seq.context[:keep] + seq.context[keep + discard :]
    return seq.context


def _after(prefix: mx.array, processor: Processor) -> Processor:
    """`processor` seeing the cached prefix before the tokens generate_step passes it."""
    return lambda tokens, logits: processor(mx.concatenate([prefix, tokens]), logits)


def _compact(cache: list[Any]) -> list[Any]:
    """A KV cache filled by generate_step grows in steps of 256 positions: keep only the positions in use,
    so the prefix cache holds (and counts) what it stores."""
    for layer in cache:
        if not isinstance(layer, KVCache) or layer.keys is None or layer.values is None:
            continue
        if layer.keys.shape[2] > layer.offset:
            layer.keys = mx.contiguous(layer.keys[..., : layer.offset, :])
            layer.values = mx.contiguous(layer.values[..., : layer.offset, :])
            mx.eval(layer.keys, layer.values)
    return cache
