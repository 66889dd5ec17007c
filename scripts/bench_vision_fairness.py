#!/usr/bin/env python3
"""How long a request with images holds up text streams of the same model (the vision issue's bound).

Starts a real server with the tiny vision model (scripts/tiny_model/vision.py) and measures, side by side in
this one run: a request with several phone photos (12-megapixel JPEGs, red under noise: decoding, resizing
and the processor are real work, the tower runs once per image) alone; then, while text streams of the same
model decode, the same request again: the longest gap between two tokens of any text stream during it, over
the request's time alone, is the ratio the issue bounds at 0.2 (issue 12's fairness rule). The longest gap
in a window as long without the request shows the machine's own jitter. Prints the numbers; asserts nothing.

    python scripts/bench_vision_fairness.py [--vision-dir DIR] [--images 8] [--size 4032x3024] [--repeats 3]

Without --vision-dir (or MLX_SHIM_TEST_VISION_MODEL_DIR) the model is built first (about two minutes).
"""

from __future__ import annotations

import argparse
import base64
import io
import itertools
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from tests.conftest import Server, cli, start_server, stop_server  # noqa: E402  (the server the tests start)

RED = (220, 30, 30)


def photos(count: int, size: tuple[int, int]) -> list[str]:
    """`count` base64 JPEGs of `size`, red under noise (so they compress like photos, to about as many bytes,
    and take as long to decode), each different."""
    rng = np.random.default_rng(0)
    out = []
    for _ in range(count):
        pixels = np.asarray(RED) + rng.normal(0, 8, (size[1], size[0], 3))
        data = io.BytesIO()
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(data, "JPEG", quality=85)
        out.append(base64.b64encode(data.getvalue()).decode())
    return out


def image_body(images: list[str]) -> bytes:
    """Encoded once, before any timing: JSON-encoding megabytes holds this process's GIL, and the threads
    that time the text streams' tokens would wait for it."""
    body = {
        "model": "vision",
        "stream": False,
        "messages": [{"role": "user", "content": "What colour is this image?", "images": images}],
        "options": {"temperature": 0, "num_predict": 8},
    }
    return json.dumps(body).encode()


def image_request(url: str, body: bytes) -> tuple[float, str]:
    started = time.perf_counter()
    response = httpx.post(url + "/api/chat", content=body, headers={"Content-Type": "application/json"}, timeout=600)
    response.raise_for_status()
    return time.perf_counter() - started, response.json()["message"]["content"]


def text_streams(url: str, answers: list[list[float]], stop: threading.Event) -> None:
    """Text requests to the same model, one after another until `stop`: each answer's token arrival times
    (gaps are taken within an answer, never across two)."""
    body = {"model": "vision", "prompt": "Describe the sea.", "options": {"temperature": 0.8, "num_predict": 256}}
    while not stop.is_set():
        arrivals: list[float] = []
        answers.append(arrivals)
        with httpx.stream("POST", url + "/api/generate", json=body, timeout=600) as response:
            for _ in response.iter_lines():
                arrivals.append(time.perf_counter())
                if stop.is_set():
                    return


def longest(answers: list[list[float]], start: float, end: float) -> float:
    """The longest gap between two tokens of one answer that overlaps [start, end]."""
    return max((b - a for s in answers for a, b in itertools.pairwise(s) if b >= start and a <= end), default=0.0)


def during(url: str, body: bytes, streams: int, window: float) -> tuple[float, float]:
    """With `streams` text streams running: the longest gap in a `window` without the request, then the
    longest gap while the request runs."""
    stop = threading.Event()
    answers: list[list[float]] = []
    threads = [threading.Thread(target=text_streams, args=(url, answers, stop)) for _ in range(streams)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # the streams are decoding
    quiet = time.perf_counter()
    time.sleep(window)
    start = time.perf_counter()
    image_request(url, body)
    end = time.perf_counter()
    time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join()
    return longest(answers, quiet, start), longest(answers, start, end)


def register(server: Server, vision_dir: Path) -> None:
    modelfile = server.home / "vision.Modelfile"
    modelfile.write_text(f"FROM {vision_dir.resolve()}\n")
    result = cli("create", "vision", "-f", str(modelfile), env=server.env)
    assert result.returncode == 0, result.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_dir = os.environ.get("MLX_SHIM_TEST_VISION_MODEL_DIR")
    parser.add_argument("--vision-dir", type=Path, default=Path(default_dir) if default_dir else None)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--size", default="4032x3024", help="WIDTHxHEIGHT of each image (a phone's 12 MP)")
    parser.add_argument("--streams", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.split("x"))
    body = image_body(photos(args.images, (width, height)))
    with tempfile.TemporaryDirectory() as tmp:
        vision_dir = args.vision_dir
        if vision_dir is None:
            from scripts.tiny_model.vision import build_tiny_vision_model

            vision_dir = build_tiny_vision_model(Path(tmp) / "model", seed=0)
        home = Path(tmp) / "home"
        home.mkdir()
        server = start_server(home)
        try:
            register(server, vision_dir)
            _, answer = image_request(server.url, body)  # loads the model, warms every path once
            alone = statistics.median(image_request(server.url, body)[0] for _ in range(args.repeats))
            runs = [during(server.url, body, args.streams, alone) for _ in range(args.repeats)]
        finally:
            stop_server(server)
    quiet, gap = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
    print(f"request: {args.images} images of {width}x{height} (answer {answer!r}); {args.streams} text streams")
    print(f"request alone: {alone * 1000:.0f} ms (median of {args.repeats})")
    print(f"longest text inter-token gap during it: {gap * 1000:.0f} ms (median of {args.repeats};"
          f" worst {max(r[1] for r in runs) * 1000:.0f} ms)")  # fmt: skip
    print(f"longest gap in as long a window without it: {quiet * 1000:.0f} ms (the machine's jitter)")
    print(f"ratio gap / alone: {gap / alone:.2f} (target <= 0.20: {'met' if gap <= 0.2 * alone else 'not met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
