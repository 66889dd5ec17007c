"""Ranks 1..n: no HTTP, no store. Each takes rank 0's plan one op at a time and does the same on its shard:
the same loads, the same admissions into the same ModelBatch (same prompt tokens, sampling settings, seeds,
token pipeline, so the same stop decisions), the same cancellations and steps. Their events go nowhere.

Any failure here ends the process: a follower that cannot do what rank 0 did would take the group out of
step, and rank 0 learns of its end through the heartbeat."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

import mlx.core as mx

from shim.accelerator import prepare_backend
from shim.distributed.heartbeat import beat
from shim.distributed.shard import Shard, ShardError, load_shard
from shim.distributed.store_check import StoreMismatch, check_store
from shim.distributed.wire import Op, share
from shim.engine.batch import ModelBatch, Sequence
from shim.engine.runner import Completion, logits_processors, sampler, vocab_size
from shim.engine.types import Done, Piece
from shim.errors import ShimError
from shim.mlx_threads import release_mlx_streams
from shim.options import GenerationOptions

log = logging.getLogger("mlx_shim")


class _Listener:
    """A follower's sequence: nobody reads its events; rank 0 says when it is cancelled."""

    def __init__(self, ident: int, key: str) -> None:
        self.ident = ident
        self.key = key
        self.cancelled = threading.Event()

    def put(self, event: Piece | Done | ShimError | None) -> None:
        pass


def follow(group: mx.distributed.Group) -> int:
    """Serve as rank `group.rank()` until rank 0 stops; the exit status."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches every rank: rank 0 stops, then says stop
    hello = share(group, None)  # rank 0's first op: its engine's batch settings and its heartbeat port
    beat(group, hello)
    try:
        check_store(group, None)
    except (StoreMismatch, RuntimeError) as e:
        log.error("%s", e)  # it names the rank
        return 1
    prepare_backend()  # as rank 0's engine thread does
    log.info("rank %d of %d: following rank 0", group.rank(), group.size())
    return Follower(group, hello["num_parallel"], hello["prefill_group"], hello["prompt_cache_bytes"]).run()


class Follower:
    def __init__(
        self, group: mx.distributed.Group, num_parallel: int, prefill_group: int, prompt_cache_bytes: int
    ) -> None:
        self.group = group
        self.num_parallel = num_parallel
        self.prefill_group = prefill_group
        self.prompt_cache_bytes = prompt_cache_bytes
        self.shards: dict[str, Shard] = {}
        self.batches: dict[str, ModelBatch] = {}
        self.listeners: dict[int, _Listener] = {}  # the running sequences, by rank 0's admission id

    def run(self) -> int:
        """Follow until rank 0 says stop (0) or the group fails (1)."""
        try:
            while True:
                op = share(self.group, None)
                if op["op"] == "stop":
                    return 0
                self.apply(op)
        except RuntimeError as e:
            log.error("rank %d: the group failed: %s", self.group.rank(), e)
            return 1
        finally:
            self.batches.clear()
            self.shards.clear()
            release_mlx_streams()

    def apply(self, op: Op) -> None:
        kind = op["op"]
        if kind == "seed":
            mx.random.seed(op["value"])
        elif kind == "load":
            try:
                self.shards[op["key"]] = load_shard(self.group, op["path"], pipeline=op["pipeline"])
            except ShardError as e:
                log.error("rank %d: %s", self.group.rank(), e)
        elif kind == "unload":
            self._unload(op["key"])
        elif kind == "admit":
            self._admit(op)
        elif kind == "step":
            for ident in op["cancel"]:
                self.listeners.pop(ident).cancelled.set()
            batch = self.batches[op["key"]]
            batch.pacer.rate = op["rate"]
            for seq in batch.step():
                self._forget(seq)
        else:
            raise RuntimeError(f"unknown op {kind!r} from rank 0")

    def _admit(self, op: dict[str, Any]) -> None:
        key = op["key"]
        shard = self.shards[key]
        batch = self.batches.get(key)
        if batch is None:
            batch = self.batches[key] = ModelBatch(
                shard.model, num_parallel=self.num_parallel, prefill_group=self.prefill_group,
                cache_bytes=self.prompt_cache_bytes,
            )  # fmt: skip
        options = op["options"]
        opts = GenerationOptions(**(options | {"stop": tuple(options["stop"])}))
        completion = Completion(
            shard.tokenizer, op["prompt"], opts, think=op["think"], shift=op["shift"], tools=op["tools"],
            template=op["template"], stop_ids=frozenset(op["stop_ids"]), logprobs=op["logprobs"],
            emit=lambda piece: None,
        )  # fmt: skip
        listener = self.listeners[op["id"]] = _Listener(op["id"], key)
        batch.admit(
            Sequence(
                listener=listener,
                completion=completion,
                sampler=sampler(opts, vocab_size(shard.model)),
                processors=logits_processors(completion, opts, shard.tokenizer, None),
                exclusive=op["exclusive"],
                stateful=False,
                shift=op["shift"],
                num_ctx=op["num_ctx"],
                num_keep=op["num_keep"],
                load_ns=0,
            )
        )

    def _forget(self, seq: Sequence) -> None:
        if isinstance(seq.listener, _Listener):
            self.listeners.pop(seq.listener.ident, None)

    def _unload(self, key: str) -> None:
        batch = self.batches.pop(key, None)
        if batch is not None:
            batch.close()
        self.listeners = {ident: item for ident, item in self.listeners.items() if item.key != key}
        if self.shards.pop(key, None) is not None:
            mx.clear_cache()
            log.info("rank %d: unloaded %s", self.group.rank(), key)
