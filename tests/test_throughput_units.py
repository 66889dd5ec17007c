"""Units of the engine's throughput work: the per-token decode shortcut, created_at formatting, wake-up
pacing, the per-backend defaults (parallelism, memory budget, CUDA's attention kernels), Metal's wired limit,
prefill pacing and burst admission."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import random
import threading
import time as clock
from datetime import UTC
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from transformers import AutoTokenizer

from registry.local import create_from_modelfile
from registry.names import ModelName
from registry.store import Store
from shim.config import Settings
from shim.engine import CompletionRequest, Engine, Message, bursts, collect, prep_pool
from shim.engine import batch as batch_module
from shim.engine.detokenizer import IncrementalDetokenizer
from shim.engine.fast_decode import text_decoder
from shim.engine.jobs import Job
from shim.engine.loaded import model_key
from shim.engine.wakeups import BATCH_INTERVAL, PER_STREAM, Wakeups
from shim.options import GenerationOptions
from shim.timefmt import _format, utc_from_ns
from tests.gguf_tokenizer_sources import TEXTS, cached


def _tokenizer_dirs(tiny_model_dir: Path) -> list[Path]:
    return [tiny_model_dir, *(cached(name) for name in ("llama3", "qwen3", "deepseek_v3"))]


def test_fast_decode_gives_transformers_text(tiny_model_dir: Path) -> None:
    """Every window the detokenizer may decode (special tokens, split UTF-8 sequences included) decodes to
    the same text as transformers' decode, and the streamed text of whole answers is the same."""
    rng = random.Random(0)
    for directory in _tokenizer_dirs(tiny_model_dir):
        hf = AutoTokenizer.from_pretrained(str(directory))
        fast = text_decoder(hf)
        assert fast != hf.decode, f"{directory.name}: expected the Rust decode path"
        specials = list(hf.all_special_ids)
        for text in TEXTS:
            ids = hf.encode(text, add_special_tokens=False)
            ids = ids[: len(ids) // 2] + specials[:2] + ids[len(ids) // 2 :]
            for start in range(len(ids)):
                window = ids[start : start + rng.randint(0, 6)]
                assert fast(window) == hf.decode(window), (directory.name, window)
            streamed = [IncrementalDetokenizer(d, ids[:3]) for d in (fast, hf.decode)]
            texts = ["".join(d.add(t) for t in ids[3:]) + d.flush() for d in streamed]
            assert texts[0] == texts[1]
        ids = [rng.randrange(len(hf)) for _ in range(400)]  # random ids: broken UTF-8 sequences and all
        assert all(fast(ids[i : i + 3]) == hf.decode(ids[i : i + 3]) for i in range(len(ids)))


def test_fast_decode_keeps_transformers_cleanup() -> None:
    """A WordPiece tokenizer whose decode cleans up spaces keeps transformers' decode (which rewrites
    " ," to ","); with the clean-up off, the shortcut gives transformers' text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "hello": 1, ",": 2, "world": 3, "!": 4, "##s": 5}
    rust = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    rust.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    rust.decoder = decoders.WordPiece(cleanup=False)  # only transformers cleans up
    ids = [1, 2, 3, 5, 4]
    cleaning = PreTrainedTokenizerFast(tokenizer_object=rust, clean_up_tokenization_spaces=True)
    assert text_decoder(cleaning) == cleaning.decode
    assert cleaning.decode(ids) == "hello, worlds!"
    plain = PreTrainedTokenizerFast(tokenizer_object=rust, clean_up_tokenization_spaces=False)
    assert text_decoder(plain) != plain.decode
    assert text_decoder(plain)(ids) == plain.decode(ids) == "hello , worlds !"


def test_created_at_matches_the_general_formatter() -> None:
    rng = random.Random(1)
    edges = [0, 1, 999_999_999, 1_000_000_000, 1_764_000_000_120_000_000]
    for ns in [*edges, *(rng.randrange(4 * 10**18) for _ in range(5000))]:
        assert utc_from_ns(ns) == _format(ns // 1_000_000_000, ns % 1_000_000_000, UTC)


def test_wakeups_of_a_step_reach_the_loop_together() -> None:
    """Inside `step` the engine thread's wake-ups are held and reach the loop in one call, in order, the
    delayed ones as timers; outside, and from any other thread, each goes at once."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        wakeups = Wakeups()
        ran: list[str] = []
        sent = 0
        real_send = loop.call_soon_threadsafe

        def counting_send(*args: Any) -> Any:
            nonlocal sent
            sent += 1
            return real_send(*args)

        loop.call_soon_threadsafe = counting_send  # type: ignore[method-assign]

        def engine_step() -> None:
            with wakeups.step():
                wakeups.call(loop, lambda: ran.append("a"), 0.0)
                wakeups.call(loop, lambda: ran.append("late"), 0.01)
                with wakeups.step():  # nested: still one send at the outer end
                    wakeups.call(loop, lambda: ran.append("b"), 0.0)
                assert sent == 0 and not ran
            wakeups.call(loop, lambda: ran.append("c"), 0.0)

        engine = threading.Thread(target=engine_step)  # not to_thread: it would send its own result
        engine.start()
        while engine.is_alive():
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.05)
        assert ran == ["a", "b", "c", "late"]
        assert sent == 2
        wakeups.call(loop, lambda: ran.append("d"), 0.0)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert ran[-1] == "d" and sent == 3

    asyncio.run(scenario())


def test_wakeups_flush_sends_what_a_step_holds_so_far() -> None:
    """`flush` inside a step sends the wake-ups held so far at once (before the engine thread waits on MLX)
    and the step goes on holding the rest; on another thread it sends nothing."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        wakeups = Wakeups()
        ran: list[str] = []
        flushed = threading.Event()
        go_on = threading.Event()

        def engine_step() -> None:
            with wakeups.step():
                wakeups.call(loop, lambda: ran.append("a"), 0.0)
                wakeups.flush()
                flushed.set()
                go_on.wait(5)
                wakeups.call(loop, lambda: ran.append("b"), 0.0)
                wakeups.flush()
                wakeups.call(loop, lambda: ran.append("c"), 0.0)

        engine = threading.Thread(target=engine_step)
        engine.start()
        while not flushed.is_set():
            await asyncio.sleep(0.001)
        wakeups.flush()  # not the step's thread: nothing of it is sent
        await asyncio.sleep(0.01)
        assert ran == ["a"]  # sent mid-step, while the step still runs
        go_on.set()
        while engine.is_alive():
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.01)
        assert ran == ["a", "b", "c"]

    asyncio.run(scenario())


def test_a_first_piece_is_handed_over_before_the_engine_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """The step that makes a stream's first piece ends only once the loop has written it (its reader asked
    for more), the GIL free meanwhile; later pieces are not waited for, and a reader that never comes back
    holds the engine thread HANDOVER at most."""
    from shim.engine import wakeups as wakeups_module
    from shim.engine.jobs import Job
    from shim.engine.types import Piece

    monkeypatch.setattr(wakeups_module, "HANDOVER", 5.0)
    order: list[str] = []

    async def scenario() -> None:
        wakeups = Wakeups()
        job = Job("complete", None)  # type: ignore[arg-type]  # a channel only: no model is involved
        job.wakeups = wakeups

        def engine_steps() -> None:
            for text in ("first", "second"):
                with wakeups.step(handover=True):
                    job.put(Piece(text))
                order.append(f"engine after {text}")
            job.put(None)

        engine = threading.Thread(target=engine_steps)
        engine.start()
        async for batch in job.batches():
            await asyncio.sleep(0.05)  # a slow write: the engine thread waits for the first one only
            order.extend(f"wrote {piece.content}" for piece in batch if isinstance(piece, Piece))
        engine.join(5)

    asyncio.run(scenario())
    assert order[:2] == ["wrote first", "engine after first"]
    assert order.index("engine after second") < order.index("wrote second")

    monkeypatch.setattr(wakeups_module, "HANDOVER", 0.05)

    async def never_read() -> float:
        job = Job("complete", None)  # type: ignore[arg-type]
        job.wakeups = wakeups = Wakeups()

        def engine_step() -> float:
            started = clock.monotonic()
            with wakeups.step(handover=True):
                job.put(Piece("first"))
            return clock.monotonic() - started

        return await asyncio.to_thread(engine_step)

    assert 0.05 <= asyncio.run(never_read()) < 1.0  # it waited, and went on without the reader


def test_wakeups_pace_grows_with_the_running_streams() -> None:
    wakeups = Wakeups()
    for streams, interval in ((0, BATCH_INTERVAL), (1, BATCH_INTERVAL), (4, BATCH_INTERVAL), (16, 16 * PER_STREAM)):
        wakeups.pace(streams)
        assert wakeups.interval == pytest.approx(interval)


def test_defaults_follow_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """OLLAMA_NUM_PARALLEL and MLX_SHIM_MEMORY_BUDGET unset: per-backend parallelism; the accelerator's memory
    as MLX reports it (Metal's unified memory, CUDA's total), the machine's RAM on the CPU."""
    import mlx.core as mx

    from shim import accelerator

    assert [accelerator.default_num_parallel(b) for b in ("cpu", "cuda", "metal")] == [4, 16, 8]
    infos = {
        "metal": {"memory_size": 64 << 30, "max_recommended_working_set_size": 48 << 30},
        "cuda": {"total_memory": 80 << 30, "free_memory": 70 << 30},
    }
    for which, info in infos.items():
        monkeypatch.setattr(mx, "device_info", lambda d=None, info=info: info)
        assert accelerator.default_memory_budget(which) == {"metal": 64 << 30, "cuda": 80 << 30}[which]
    monkeypatch.setattr(mx, "device_info", lambda d=None: {"device_name": "x"})  # no memory reported
    assert accelerator.default_memory_budget("cuda") == accelerator.physical_memory()
    assert accelerator.default_memory_budget("cpu") == accelerator.physical_memory() > 0
    assert accelerator.backend() == "cpu"  # this machine: MLX on the CPU
    monkeypatch.delenv("OLLAMA_NUM_PARALLEL", raising=False)
    monkeypatch.delenv("MLX_SHIM_MEMORY_BUDGET", raising=False)
    settings = Settings()
    assert (settings.num_parallel, settings.memory_budget) == (4, accelerator.physical_memory())
    monkeypatch.setenv("OLLAMA_NUM_PARALLEL", "2")
    monkeypatch.setenv("MLX_SHIM_MEMORY_BUDGET", "0")
    assert (Settings().num_parallel, Settings().memory_budget) == (2, 0)


@pytest.mark.parametrize(
    ("which", "preset", "expected"), [("cuda", None, "0"), ("cuda", "1", "1"), ("cpu", None, None)]
)
def test_cudnn_attention_is_off_on_cuda_unless_set(
    monkeypatch: pytest.MonkeyPatch, which: str, preset: str | None, expected: str | None
) -> None:
    """On CUDA the server runs attention on MLX's kernels, not cuDNN's (whose plan for each new prompt length
    cost 43-75 ms on an H100), unless the user set MLX_CUDA_USE_CUDNN_SDPA; elsewhere nothing is set.
    (CUDA is not available here: the backend is faked.)"""
    from shim import accelerator

    monkeypatch.setattr(accelerator, "backend", lambda: which)
    if preset is None:
        monkeypatch.delenv(accelerator.CUDNN_ATTENTION, raising=False)
    else:
        monkeypatch.setenv(accelerator.CUDNN_ATTENTION, preset)
    accelerator.prepare_backend()
    assert os.environ.get(accelerator.CUDNN_ATTENTION) == expected


def test_metal_wired_limit_and_its_warning(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """On Metal the recommended working set is wired for the server's life, and a model past 90% of it gets
    mlx-lm's warning; elsewhere neither happens. (Metal itself is not available here: its calls are faked.)"""
    import mlx.core as mx

    from shim import accelerator

    assert accelerator.set_wired_limit() is None  # the CPU backend
    assert not accelerator.warn_if_near_wired_limit("m", 1 << 40)
    wired: list[int] = []
    monkeypatch.setattr(accelerator, "backend", lambda: "metal")
    monkeypatch.setattr(mx, "device_info", lambda d=None: {"max_recommended_working_set_size": 10_000 << 20})
    monkeypatch.setattr(mx, "set_wired_limit", lambda n: wired.append(n) or 0)
    assert accelerator.set_wired_limit() == 10_000 << 20 and wired == [10_000 << 20]
    with caplog.at_level(logging.WARNING, logger="mlx_shim"):
        assert not accelerator.warn_if_near_wired_limit("small", 9_000 << 20)
        assert accelerator.warn_if_near_wired_limit("big", 9_001 << 20)
    assert "big requires 9001 MB, close to the maximum recommended size of 10000 MB" in caplog.text


def test_new_prompts_prefill_in_groups(tiny_model_dir: Path) -> None:
    """The batch's BatchGenerator starts with prefill groups of `prefill_group` (so 16 arrivals of long prompts
    prefill as two groups of 8, decode steps between), never more than the batch holds."""
    from shim.engine.batch import ModelBatch
    from shim.engine.mlx_lm_api import load_model

    model, _ = load_model(str(tiny_model_dir))
    for parallel, group, expected in ((16, 8, 8), (4, 8, 4), (16, 16, 16), (8, 0, 1)):
        batch = ModelBatch(model, num_parallel=parallel, prefill_group=group, cache_bytes=0)
        assert (batch.generator.prefill_batch_size, batch.generator.completion_batch_size) == (expected, parallel)
        batch.close()


@pytest.mark.parametrize(
    ("rate", "length", "group"),
    [
        (0.0, 20, 8),  # no rate measured yet: mlx-lm's group
        (1e6, 20, 16),  # one slice prefills the whole burst: one group
        (16 * 20 / 0.1, 20, 16),  # just fits: 16 rows of 20 tokens are the slice's budget
        (12 * 64 / 0.1, 64, 12),  # a slice takes 12 of them
        (1e6, 3000, 8),  # longer than a slice's tokens per row: mlx-lm's group
    ],
)
def test_a_burst_prefills_in_as_few_groups_as_one_slice_takes(
    tiny_model_dir: Path, rate: float, length: int, group: int
) -> None:
    """The prefill group grows past `prefill_group` to as many waiting prompts as one slice (prefill.SLICE_
    SECONDS at the measured rate) prefills to the end side by side: then all of them have a first token after
    that one slice, where the second group of 8 would wait for the first to leave the prefill."""
    from shim.engine.mlx_lm_api import BatchGenerator, load_model
    from shim.engine.prefill import Pacer, pace

    model, _ = load_model(str(tiny_model_dir))
    generator = BatchGenerator(model, completion_batch_size=16, prefill_batch_size=8)
    pacer = Pacer()
    pacer.rate = rate
    uids = generator.insert([[5 + i] * (length + 1) for i in range(16)], max_tokens=[4] * 16)
    (rows, tokens), full = pace(generator, pacer, 8)
    step = pacer.tokens(group)
    assert (generator.prefill_batch_size, generator.prefill_step_size, rows) == (group, step, group)
    assert (tokens, full) == (min(length, step), length >= step)  # the shape the model runs on: rows padded
    first: set[int] = set()
    for _ in range(3):  # the prefill slice, the step that moves prefilled rows to decoding, their first token
        first |= {r.uid for r in generator.next()[1]}
        pace(generator, pacer, 8)
    expected = set(uids[:group]) if step >= length else set()
    assert first == expected
    generator.close()


@pytest.mark.parametrize("hold", [30.0, 0.0])
def test_a_burst_starts_together(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, hold: float
) -> None:
    """Requests that arrive together start in one engine turn (one prefill group), even though their
    preparations end apart: the first ones wait while the others of their model are still being prepared.
    Preparation is made slower per request here (0, 40, 80, 120 ms: a burst's HTTP arrivals), so with the
    hold off (0 s) they start turns apart, which shows the test can fail; a lone request never waits for it."""
    monkeypatch.setattr(bursts, "HOLD_SECONDS", hold)
    prepare = prep_pool.prepare_completion

    def staggered(req: Any, *args: Any) -> Any:
        clock.sleep(0.04 * int(req.messages[-1].content.split()[-1]))
        return prepare(req, *args)

    monkeypatch.setattr(prep_pool, "prepare_completion", staggered)
    turns: list[int] = []  # the batch's decode-step count when each request joined
    admit = batch_module.ModelBatch.admit
    monkeypatch.setattr(
        batch_module.ModelBatch, "admit", lambda self, seq: (turns.append(self._steps), admit(self, seq))[1]
    )
    # The four are submitted from the event loop one after another; the engine thread, once it first sees one,
    # waits (5 s at most) until all four are, so the burst arrives together however the two threads are
    # scheduled (under load the engine thread could otherwise start the first before the loop submits the rest).
    seen: list[bool] = []
    start_waiting = Engine._start_waiting

    def gathered(self: Engine) -> None:
        if not seen and any(job.kind == "complete" for job in self._waiting):
            seen.append(True)
            deadline = clock.monotonic() + 5
            while self._intake.pending < 4 and clock.monotonic() < deadline:
                clock.sleep(0.001)
        start_waiting(self)

    monkeypatch.setattr(Engine, "_start_waiting", gathered)
    stored = create_from_modelfile(Store(tmp_path), ModelName.parse("m"), f"FROM {tiny_model_dir}\n", base_dir=tmp_path)

    def request(i: int) -> CompletionRequest:
        return CompletionRequest(
            model=stored,
            options=GenerationOptions(temperature=0, num_predict=24),
            messages=[Message("user", f"hi {i}")],
        )

    async def run() -> float:
        engine = Engine(default_keep_alive=300, max_loaded_models=1)
        engine.start()
        try:
            await engine.load(stored, None)
            await asyncio.gather(*(collect(engine.complete(request(i))) for i in range(4)))
            started = clock.monotonic()
            await collect(engine.complete(request(0)))  # alone: nothing else is being prepared
            return clock.monotonic() - started
        finally:
            engine.stop()

    lone = asyncio.run(run())
    burst = turns[:4]
    if hold:
        assert len(set(burst)) == 1, burst
        assert lone < hold / 3  # it did not wait out the hold
    else:
        assert len(set(burst)) > 1, burst


def test_a_loaded_models_request_is_prepared_before_the_engine_thread_takes_it(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request for a model already loaded starts its preparation when it is submitted, not when the engine
    thread gets to it: here the engine thread, on first seeing the request, waits for its preparation to
    begin (5 s at most), which without the early start would never happen while it waits."""
    began = threading.Event()
    prepare = prep_pool.prepare_completion
    monkeypatch.setattr(prep_pool, "prepare_completion", lambda *args: (began.set(), prepare(*args))[1])
    waited: list[bool] = []
    start_waiting = Engine._start_waiting

    def gated(self: Engine) -> None:
        if not waited and any(job.kind == "complete" for job in self._waiting):
            waited.append(began.wait(5))
        start_waiting(self)

    monkeypatch.setattr(Engine, "_start_waiting", gated)
    stored = create_from_modelfile(Store(tmp_path), ModelName.parse("m"), f"FROM {tiny_model_dir}\n", base_dir=tmp_path)
    request = CompletionRequest(
        model=stored, options=GenerationOptions(temperature=0, num_predict=4), messages=[Message("user", "hi")]
    )

    async def run() -> str:
        engine = Engine(default_keep_alive=300, max_loaded_models=1)
        engine.start()
        try:
            await engine.load(stored, None)
            piece, _ = await collect(engine.complete(request))
            return piece.content
        finally:
            engine.stop()

    assert asyncio.run(run())
    assert waited == [True]


def test_an_early_preparation_is_used_only_on_the_loaded_model_it_was_begun_for() -> None:
    """A job prepared early for a loaded model that was then unloaded is prepared again for the model it
    runs on; one adopted for the model it was begun for is answered from that preparation alone."""

    class Loaded:  # a LoadedModel stand-in: what `preparation` reads of one, and its identity
        tokenizer = vision = None

    begun_for, reloaded = cast(Any, Loaded()), cast(Any, Loaded())

    class Work:
        def __init__(self) -> None:
            self.prepared_for: list[object] = []

        def prepare(self, loaded: object) -> object:
            self.prepared_for.append(loaded)
            return loaded

    async def run(runs_on: Any) -> list[object]:
        pool = prep_pool.PrepPool(lambda: None)
        work = Work()
        stored = cast(Any, SimpleNamespace(name=SimpleNamespace(full="m:latest"), digest="sha256:0"))
        job = Job("work", stored, work=cast(Any, work))
        try:
            pool.start_early(job, begun_for)
            pool.adopt([job], {model_key(job.stored): runs_on})
            while pool.result(job, runs_on) is None:
                await asyncio.sleep(0.001)
            assert pool.result(job, runs_on) is runs_on
            pool.forget(job)
            return work.prepared_for
        finally:
            pool.shutdown()

    assert asyncio.run(run(begun_for)) == [begun_for]  # one preparation, the early one
    assert asyncio.run(run(reloaded))[-1] is reloaded  # (the early one may have run before it was cancelled)

    async def left_waiting() -> Job:
        pool = prep_pool.PrepPool(lambda: None)
        job = Job("work", cast(Any, None), work=cast(Any, SimpleNamespace(prepare=lambda loaded: None)))
        pool.start_early(job, cast(Any, Loaded()))
        pool.shutdown()
        return job

    job = asyncio.run(left_waiting())
    assert job.early is not None
    job.early[1].result(timeout=5)
    deadline = clock.monotonic() + 2  # the pool thread lets go of its work item just after the result is set
    while job.early[0]() is not None and clock.monotonic() < deadline:
        gc.collect()
        clock.sleep(0.01)
    assert job.early[0]() is None  # a job left waiting keeps no unloaded model alive


def test_a_prompt_slice_is_timed_under_the_shape_the_model_ran_on(tiny_model_dir: Path) -> None:
    """A prompt's last slice is as long as what was left of it: timed under that shape, a new one (its first
    run may carry MLX CUDA's compilation), not under the full slices' recurring one."""
    from shim.engine.mlx_lm_api import load_model, make_prompt_cache
    from shim.engine.prefill import FIRST_TOKENS, Pacer, PromptFill

    model, _ = load_model(str(tiny_model_dir))
    shapes: list[tuple[tuple[int, int], bool]] = []

    class Recording(Pacer):
        def record(self, tokens: int, seconds: float, shape: tuple[int, int], full: bool = True) -> None:
            shapes.append((shape, full))

    fill = PromptFill(model, make_prompt_cache(model), [7] * (FIRST_TOKENS + 44), Recording())
    while not fill.done:
        fill.advance()
    assert shapes == [((1, FIRST_TOKENS), True), ((1, 44), False)]


def test_prefill_rate_skips_each_shapes_first_slice() -> None:
    """The first slice of each (rows, tokens) shape may carry MLX CUDA's kernel compilation: it does not set
    the rate, the next one of that shape does, and a slow first slice of a new shape cannot lower it; nor can
    a slice whose prompts all ended short of the cut."""
    from shim.engine.prefill import FIRST_TOKENS, Pacer

    pacer = Pacer()
    pacer.record(256, 2.0, (1, 256))  # compiling: 128 tok/s
    assert (pacer.rate, pacer.tokens()) == (0.0, FIRST_TOKENS)
    pacer.record(256, 0.01, (1, 256))
    assert pacer.rate == 25_600
    pacer.record(4 * 512, 5.0, (4, 512))  # a new shape, compiling
    assert pacer.rate == 25_600
    pacer.record(4 * 512, 0.5, (4, 512))  # 4,096 tok/s: the rate falls by a fifth at most
    assert pacer.rate == 25_600 * 0.8
    for _ in range(5):  # short prompts, each ending before the cut: their fixed cost does not wear the rate down
        pacer.record(40, 0.01, (4, 512), full=False)
    assert pacer.rate == 25_600 * 0.8
    pacer.record(4 * 100, 0.001, (4, 512), full=False)  # but one may show it faster
    assert pacer.rate == 400_000
