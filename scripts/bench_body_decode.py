#!/usr/bin/env python3
"""How long parsing a large request body holds the event loop, inline and on a worker thread, side by side.

The app runs in-process over the tests' fake backend; a ticker on the event loop sleeps 1 ms at a time and the
longest overshoot while a body is parsed is the loop's longest stall (what every other stream's tokens wait).
Each endpoint's body carries 8 images of ~3 MB each (base64 of random bytes: the size of the phone photos in
scripts/bench_vision_fairness.py) for a model that does not exist, so the answer (404) comes right after the
parse. `inline` forces every body onto the event loop (the threshold raised past it), `off loop` is the
shipped threshold (shim/request_body.py). Rounds alternate the two. Then the cost of the thread hop for a small
body (which stays inline below the threshold): a 2 KB chat body per request, inline and forced onto a thread.
With --server MODEL_DIR (a text model, e.g. the tiny model), the same over a real server started from this
checkout: two text streams of the model decode while the /api/chat body with the images, for that text model,
is parsed and refused (400 after the parse); the longest gap between two tokens of a stream during each
request, and in as long a window without it. That is one checkout's number: run it on two to compare.
Prints the numbers; asserts nothing.

    python scripts/bench_body_decode.py [--images 8] [--image-mb 3] [--rounds 5] [--server MODEL_DIR [--rounds 15]]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from registry.store import Store  # noqa: E402
from scripts.bench_vision_fairness import longest, text_streams  # noqa: E402
from shim.app import create_app  # noqa: E402
from shim.config import Settings  # noqa: E402
from tests.asgi_harness import Exchange  # noqa: E402
from tests.conftest import cli, start_server, stop_server  # noqa: E402
from tests.fake_backend import FakeBackend  # noqa: E402


def bodies(images: list[str]) -> dict[str, dict[str, Any]]:
    urls = [{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + i}} for i in images]
    sources = [{"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": i}} for i in images]
    return {
        "/api/chat": {"model": "absent", "messages": [{"role": "user", "content": "What colour?", "images": images}]},
        "/v1/chat/completions": {"model": "absent", "messages": [{"role": "user", "content": urls}]},
        "/v1/messages": {"model": "absent", "max_tokens": 8, "messages": [{"role": "user", "content": sources}]},
    }  # fmt: skip


@contextmanager
def threshold(value: int) -> Iterator[None]:
    from shim import request_body  # here, so that --server runs on a checkout without it (to compare)

    saved = request_body.OFF_LOOP_BYTES
    request_body.OFF_LOOP_BYTES = value
    try:
        yield
    finally:
        request_body.OFF_LOOP_BYTES = saved


async def post(app: Any, path: str, body: bytes) -> int:
    async with Exchange(app, "POST", path, body) as ex:
        status, _ = await ex.start()
        await ex.rest()
    return status


async def stall(app: Any, path: str, body: bytes) -> tuple[float, float]:
    """The request's time, and the loop's longest stall while it ran."""
    done = asyncio.Event()
    worst = 0.0

    async def ticker() -> None:
        nonlocal worst
        while not done.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            worst = max(worst, time.perf_counter() - start - 0.001)

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    start = time.perf_counter()
    status = await post(app, path, body)
    took = time.perf_counter() - start
    done.set()
    await tick
    assert status == 404, status
    return took, worst


async def per_request(app: Any, body: bytes, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        await post(app, "/api/chat", body)
    return (time.perf_counter() - start) / count


async def main(args: argparse.Namespace) -> None:
    from shim.request_body import OFF_LOOP_BYTES

    images = [base64.b64encode(os.urandom(int(args.image_mb * 3 / 4 * 2**20))).decode() for _ in range(args.images)]
    encoded = {path: json.dumps(body).encode() for path, body in bodies(images).items()}
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(), Store(Path(tmp)), backend=FakeBackend())
        print(f"{args.images} images of {args.image_mb} MB; body {len(encoded['/api/chat']) / 2**20:.1f} MiB;"
              f" threshold {OFF_LOOP_BYTES >> 10} KiB; medians of {args.rounds} rounds")  # fmt: skip
        for path, body in encoded.items():
            runs: dict[str, list[tuple[float, float]]] = {"inline": [], "off loop": []}
            for _ in range(args.rounds):
                with threshold(len(body) + 1):
                    runs["inline"].append(await stall(app, path, body))
                runs["off loop"].append(await stall(app, path, body))
            (took_in, gap_in), (took_off, gap_off) = (
                (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs)) for rs in runs.values()
            )
            print(f"{path:22} longest loop stall: inline {gap_in * 1000:.1f} ms, off loop {gap_off * 1000:.1f} ms"
                  f" ({gap_off / gap_in:.2f}x); request {took_in * 1000:.0f} vs {took_off * 1000:.0f} ms")  # fmt: skip
        small = json.dumps({"model": "absent", "messages": [{"role": "user", "content": "hi " * 700}]}).encode()
        inline, hop = [], []
        for _ in range(args.rounds):
            inline.append(await per_request(app, small, 500))
            with threshold(0):
                hop.append(await per_request(app, small, 500))
        a, b = statistics.median(inline), statistics.median(hop)
        print(f"small body ({len(small)} B) per request: inline {a * 1e6:.0f} µs, on a thread {b * 1e6:.0f} µs"
              f" (the hop: {(b - a) * 1e6:+.0f} µs)")  # fmt: skip


def over_server(model_dir: Path, body: dict[str, Any], rounds: int) -> None:
    body = {**body, "model": "vision", "stream": False}  # the name text_streams asks for; a text model
    encoded = json.dumps(body).encode()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        server = start_server(home)
        stop = threading.Event()
        answers: list[list[float]] = []
        streams = [threading.Thread(target=text_streams, args=(server.url, answers, stop)) for _ in range(2)]
        try:
            (home / "Modelfile").write_text(f"FROM {model_dir.resolve()}\n")
            assert cli("create", "vision", "-f", str(home / "Modelfile"), env=server.env).returncode == 0
            for t in streams:
                t.start()
            time.sleep(2.0)  # the streams are decoding
            during, without, took = [], [], []
            for _ in range(rounds):
                start = time.perf_counter()
                headers = {"Content-Type": "application/json"}
                status = httpx.post(server.url + "/api/chat", content=encoded, headers=headers, timeout=60).status_code
                end = time.perf_counter()
                assert status == 400, status  # the text model refuses images, once the body is parsed
                time.sleep(0.3)
                quiet = time.perf_counter()
                time.sleep(end - start)
                during.append(longest(answers, start, end))
                without.append(longest(answers, quiet, time.perf_counter()))
                took.append(end - start)
                time.sleep(0.3)
        finally:
            stop.set()
            for t in streams:
                t.join()
            stop_server(server)
    print(f"server: request {statistics.median(took) * 1000:.0f} ms; text streams' longest gap during it"
          f" {statistics.median(during) * 1000:.0f} ms (worst {max(during) * 1000:.0f}), in as long a window"
          f" without it {statistics.median(without) * 1000:.0f} ms (worst {max(without) * 1000:.0f});"
          f" medians of {rounds}")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--image-mb", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--server", type=Path, metavar="MODEL_DIR", help="measure over a real server instead")
    arguments = parser.parse_args()
    if arguments.server:
        pictures = [base64.b64encode(os.urandom(int(arguments.image_mb * 3 / 4 * 2**20))).decode()
                    for _ in range(arguments.images)]  # fmt: skip
        over_server(arguments.server, bodies(pictures)["/api/chat"], arguments.rounds)
    else:
        asyncio.run(main(arguments))
