"""Rank 0's hooks: every step the engine takes that changes MLX state is shared with the other ranks first.

A running sequence's cancellation is pinned to a step: the engine's batch reads `cancelled` from a proxy that
only this module sets, right before the step it is shared with, so a client leaving between two steps is seen
by every rank at the same step. Whatever cannot run in lockstep is refused here with a clear error. The first
failure of the group (a collective that raised, a rank the heartbeat lost) is final: the running requests
are answered a 503 with the reason at once, from whichever thread saw it (the engine thread may be stuck
for good in a collective with the dead peer: MLX's ring backend fails the pending transfers, not the ones
queued after), every later request gets the same, `on_lost` starts the server's stop, and if the process
has not ended EXIT_AFTER seconds later it exits with status 1 there and then.
"""

from __future__ import annotations

import dataclasses
import faulthandler
import logging
import threading
from collections.abc import Callable

import mlx.core as mx

from registry.model_dir import ENCODER_ARCHITECTURES
from registry.store import Store, StoredModel
from shim.config import pipeline_split
from shim.distributed.heartbeat import Watchdog
from shim.distributed.lockstep import Lockstep
from shim.distributed.shard import ShardError, load_shard
from shim.distributed.store_check import StoreMismatch, check_store, listing
from shim.distributed.wire import Op, share
from shim.engine.batch import Listener, ModelBatch, Sequence
from shim.engine.loaded import LoadedModel, model_key
from shim.engine.types import CompletionRequest, Done, Piece
from shim.engine.vision_lane import has_images
from shim.errors import Kind, ShimError

log = logging.getLogger("mlx_shim")
NO_FORMAT = "format is not supported when serving a model across several processes (mlx.launch)"
NO_EMBED = "embeddings are not supported when serving across several processes (mlx.launch)"
NO_IMAGES = "images are not supported when serving a model across several processes (mlx.launch)"
EXIT_AFTER = 10.0  # seconds from a lost rank to rank 0's exit at the latest (the drain's default 5 s fits)


class Leader(Lockstep):
    def __init__(
        self, group: mx.distributed.Group, *, num_parallel: int, prefill_group: int, prompt_cache_bytes: int
    ) -> None:
        self.group = group
        self.lost: str | None = None
        self.on_lost: Callable[[], None] = lambda: None  # set by the server: begin its stop
        self._lost_lock = threading.Lock()
        self._next_id = 0
        self._running: dict[int, _Pinned] = {}
        # The followers' batches are made as the engine makes rank 0's.
        hello = {"num_parallel": num_parallel, "prefill_group": prefill_group, "prompt_cache_bytes": prompt_cache_bytes}
        self.watchdog = Watchdog.start(group, hello, self._lose)

    # -- the engine's hooks ------------------------------------------------------------------------

    def seed(self, value: int) -> int:
        self._tell({"op": "seed", "value": value})
        return value

    def share_of(self, nbytes: int) -> int:
        """Each rank holds about its part of the weights: the memory budget is checked against that."""
        return -(-nbytes // self.group.size())

    def load(self, stored: StoredModel, load: Callable[[StoredModel], LoadedModel]) -> LoadedModel:
        if stored.info().architecture in ENCODER_ARCHITECTURES:
            raise ShimError(NO_EMBED, Kind.BAD_INPUT)
        key = model_key(stored)
        pipeline = pipeline_split()
        self._tell({"op": "load", "key": key, "path": str(stored.model_dir), "pipeline": pipeline})
        try:
            shard = load_shard(self.group, str(stored.model_dir), pipeline=pipeline)
        except ShardError:
            raise  # the engine says "unable to load model: " and why
        except RuntimeError as e:  # a collective failed: the group is gone
            raise self._broken(e) from e
        memory = shard.split["shard_bytes"][0]
        loaded = LoadedModel(key, stored, stored.info(), shard.model, shard.tokenizer, memory, split=shard.split)
        log.info("loaded %s across %d ranks: %s", stored.name.display, self.group.size(), shard.split)
        return loaded

    def unload(self, key: str) -> None:
        if self.lost is None:
            self._tell({"op": "unload", "key": key})

    def admit(self, key: str, req: CompletionRequest, sequence: Sequence) -> None:
        if req.format is not None:
            raise ShimError(NO_FORMAT, Kind.BAD_INPUT)
        if has_images(req):  # the followers would replay image placeholders without the tower's features
            raise ShimError(NO_IMAGES, Kind.BAD_INPUT)
        completion = sequence.completion
        ident = self._next_id
        self._next_id += 1
        self._tell({
            "op": "admit",
            "key": key,
            "id": ident,
            "prompt": completion.prompt,
            "options": dataclasses.asdict(req.options),
            # The router's think marker is what thinking changes in the token pipeline (empty: off).
            "think": bool(completion.output.think_start),
            "tools": req.tools,
            "template": req.template,  # a Go template's call format holds stop strings back inside calls
            "stop_ids": sorted(completion.eos),
            "logprobs": completion.logprobs.top if completion.logprobs is not None else None,
            "shift": sequence.shift,
            "exclusive": sequence.exclusive,
            "num_ctx": sequence.num_ctx,
            "num_keep": sequence.num_keep,
        })  # fmt: skip
        pinned = _Pinned(sequence.listener, ident, key, self._running)
        self._running[ident] = pinned
        sequence.listener = pinned

    def step(self, key: str, batch: ModelBatch) -> None:
        gone = []
        for ident, pinned in self._running.items():
            if pinned.key == key and pinned.job.cancelled.is_set() and not pinned.cancelled.is_set():
                pinned.cancelled.set()
                gone.append(ident)
        # The prefill slice length follows a rate measured in time, which differs between ranks: rank 0's rules.
        self._tell({"op": "step", "key": key, "cancel": gone, "rate": batch.pacer.rate})

    def failed(self, error: Exception) -> ShimError:
        """In lockstep a failed step cannot be repaired: the ranks may no longer agree. The group is done."""
        return self._broken(error)

    def check_embed(self) -> None:
        raise ShimError(NO_EMBED, Kind.BAD_INPUT)

    # -- the group ---------------------------------------------------------------------------------

    def check_store(self, store: Store) -> str | None:
        """At start: every rank has `store` at the same path with the same model files, else why not (the
        group is then done: the other ranks end too)."""
        try:
            check_store(self.group, listing(store))
        except (StoreMismatch, RuntimeError) as e:
            self.watchdog.close()  # the followers end too: their ends are no loss to report
            return str(e)
        return None

    def close(self) -> None:
        """The server has stopped: the other ranks stop too."""
        if self.lost is None:
            self._tell({"op": "stop"})
        self.watchdog.close()

    def _tell(self, op: Op) -> None:
        if self.lost is not None:
            raise ShimError(self.lost, Kind.BUSY)
        try:
            share(self.group, op)
        except RuntimeError as e:
            raise self._broken(e) from e

    def _broken(self, error: Exception) -> ShimError:
        self._lose(f"a collective failed: {error}")
        assert self.lost is not None
        return ShimError(self.lost, Kind.BUSY)

    def _lose(self, reason: str) -> None:
        """Called once the group is known broken, from the engine thread or the heartbeat's; the first reason
        is the one every request is told."""
        with self._lost_lock:
            if self.lost is not None:
                return
            self.lost = f"the distributed model server lost a rank ({reason}); it is shutting down"
        log.error("%s", self.lost)
        for pinned in list(self._running.values()):
            pinned.end(ShimError(self.lost, Kind.BUSY))
        # The last resort, from a thread of faulthandler's own that needs no GIL: the stacks, then exit status 1.
        faulthandler.dump_traceback_later(EXIT_AFTER, exit=True)
        self.on_lost()


class _Pinned:
    """A running sequence's listener on rank 0: events go to its job, but the batch sees the job cancelled
    only from the step at which the other ranks are told."""

    def __init__(self, job: Listener, ident: int, key: str, running: dict[int, _Pinned]) -> None:
        self.job = job
        self.ident = ident
        self.key = key
        self.cancelled = threading.Event()
        self._running = running
        self._ended = False

    def put(self, event: Piece | Done | ShimError | None) -> None:
        if self._ended:  # answered already (the group was lost): nothing more reaches the client
            return
        if event is None:
            self._ended = True
            self._running.pop(self.ident, None)
        self.job.put(event)

    def end(self, error: ShimError) -> None:
        """Answer `error` now, from any thread."""
        self.put(error)
        self.put(None)
