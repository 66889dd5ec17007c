"""The server's per-token work alone, without MLX: what each generated token costs the engine thread and the
event loop, in CPU microseconds, for this checkout and (--compare DIR) another one, side by side.

S streams get one token each per engine step; a step lasts --step-ms (sleeping out what the pipeline leaves
of it, as a GPU step would). The engine thread runs each stream's `runner.Completion.feed` (detokenizer,
output router, `Job.put`) inside the engine's wake-up batching where the checkout has it; the event loop
consumes every job's batches and frames Ollama's NDJSON lines (`shapes.generate_chunk`, `go_json`). Each side's
CPU time (`time.thread_time`, the engine side counted inside the steps only) divided by the tokens is
printed. The HTTP stack after the framing (ASGI middlewares, h11, the socket) is not included: what fewer
wake-ups save there comes on top. CPU time, unlike wall time, hardly depends on how busy the machine is.

    PYTHONPATH=. python scripts/bench_token_pipeline.py --tokenizer /work/tiny-model --compare /tmp/base
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

SHAPES = ((1, 600, 4.0), (4, 300, 6.0), (16, 300, 8.0))  # streams, tokens each, step ms


def measure(tokenizer_dir: Path, streams: int, tokens: int, step_ms: float) -> tuple[float, float]:
    """(engine µs per token, loop µs per token) for the checkout this process imports `shim` from."""
    from mlx_lm.utils import load_tokenizer

    from shim.engine.jobs import Job
    from shim.engine.runner import Completion
    from shim.engine.types import Piece
    from shim.jsonbytes import go_json
    from shim.ollama import shapes
    from shim.options import GenerationOptions

    try:
        from shim.engine.wakeups import Wakeups

        wakeups: Any = Wakeups()
    except ImportError:  # a checkout from before the engine batched its wake-ups
        wakeups = None
    tokenizer = load_tokenizer(tokenizer_dir)
    rng = random.Random(0)
    vocab = len(tokenizer.get_vocab())
    ids = [[rng.randrange(vocab // 8, vocab - 8) for _ in range(tokens)] for _ in range(streams)]
    spent: dict[str, float] = {}

    async def run() -> None:
        jobs = [Job("complete", None) for _ in range(streams)]  # type: ignore[arg-type]
        for job in jobs:
            if wakeups is not None:
                job.wakeups = wakeups
        completions = [
            Completion(tokenizer, [1, 2, 3], GenerationOptions(), think=False, shift=True, tools=None, emit=job.put)
            for job in jobs
        ]

        def engine() -> None:
            total = 0.0
            for i in range(tokens):
                started, cpu = time.perf_counter(), time.thread_time()
                with wakeups.step() if wakeups is not None else contextlib.nullcontext():
                    for completion, seq in zip(completions, ids, strict=True):
                        completion.feed(seq[i])
                if wakeups is not None:
                    wakeups.pace(streams)
                total += time.thread_time() - cpu
                time.sleep(max(step_ms / 1000 - (time.perf_counter() - started), 0.0))
            for job, completion in zip(jobs, completions, strict=True):
                job.put(completion.finish())
                job.put(None)
            spent["engine"] = total

        async def consume(job: Job) -> None:
            async for batch in job.batches():
                b"".join(go_json(shapes.generate_chunk("m", e)) + b"\n" for e in batch if isinstance(e, Piece))

        cpu = time.thread_time()
        thread = threading.Thread(target=engine)
        thread.start()
        await asyncio.gather(*(consume(job) for job in jobs))
        spent["loop"] = time.thread_time() - cpu
        thread.join()

    asyncio.run(run())
    n = streams * tokens
    return spent["engine"] / n * 1e6, spent["loop"] / n * 1e6


def _in(tree: Path, args: argparse.Namespace, shape: tuple[int, int, float]) -> tuple[float, float]:
    """`measure` run by a fresh interpreter importing `shim` from `tree`."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--tokenizer", str(args.tokenizer), "--one", *map(str, shape)]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, check=True)
    engine, loop = out.stdout.split()
    return float(engine), float(loop)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokenizer", type=Path, required=True, help="a model directory with its tokenizer")
    p.add_argument("--compare", type=Path, help="another checkout, measured alternately with this one")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--one", nargs=3, help=argparse.SUPPRESS)  # streams tokens step_ms: one measurement, raw
    args = p.parse_args()
    if args.one:
        engine, loop = measure(args.tokenizer, int(args.one[0]), int(args.one[1]), float(args.one[2]))
        print(engine, loop)
        return 0
    trees = {"this checkout": Path(__file__).resolve().parent.parent}
    if args.compare:
        trees[args.compare.name] = args.compare.resolve()
    print(f"CPU µs per token, medians of {args.rounds} rounds (engine thread | event loop)")
    for shape in SHAPES:
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                results[name].append(_in(tree, args, shape))
        cells = [
            f"{name}: {statistics.median(e for e, _ in r):6.1f} | {statistics.median(lo for _, lo in r):6.1f}"
            for name, r in results.items()
        ]
        print(f"  {shape[0]:>2} streams, {shape[2]:.0f} ms steps   " + "    ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
