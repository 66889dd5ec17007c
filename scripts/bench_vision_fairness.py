#!/usr/bin/env python3
"""How long a request with an image holds up text streams of the same model (the vision issue's bound).

Starts a real server with the tiny vision model (scripts/tiny_model/vision.py), times a request with an image
alone, then runs text streams of the same model and sends the same request while they decode: the longest
gap between two tokens of any text stream during it, over the request's time alone, is the ratio the issue
bounds at 0.2. Prints the numbers measured side by side; asserts nothing.

    python scripts/bench_vision_fairness.py --vision-dir build/tiny-vision [--streams 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import base64
import io
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def serve(home: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OLLAMA_HOST": f"127.0.0.1:{port}", "MLX_SHIM_HOME": str(home), "MLX_SHIM_NO_BUILTIN": "1"}
    log = (home / "server.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "shim.cli", "serve"], env=env, stdout=log, stderr=log)
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def image_request(url: str, image: str) -> float:
    started = time.perf_counter()
    body = {
        "model": "vision",
        "stream": False,
        "messages": [{"role": "user", "content": "What colour is this image?", "images": [image]}],
        "options": {"temperature": 0, "num_predict": 8},
    }
    httpx.post(url + "/api/chat", json=body, timeout=300).raise_for_status()
    return time.perf_counter() - started


def text_streams(url: str, answers: list[list[float]], stop: threading.Event) -> None:
    """Text requests to the same model, one after another until `stop`: each answer's token arrival times
    (gaps are taken within an answer, never across two)."""
    body = {"model": "vision", "prompt": "Describe the sea.", "options": {"temperature": 0.8, "num_predict": 64}}
    while not stop.is_set():
        arrivals: list[float] = []
        answers.append(arrivals)
        with httpx.stream("POST", url + "/api/generate", json=body, timeout=300) as response:
            for _ in response.iter_lines():
                arrivals.append(time.perf_counter())


def longest(answers: list[list[float]], start: float, end: float) -> float:
    return max((b - a for s in answers for a, b in itertools.pairwise(s) if b >= start and a <= end), default=0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vision-dir", type=Path, required=True, help="a built tiny vision model")
    parser.add_argument("--streams", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--port", type=int, default=11491)
    args = parser.parse_args()
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (220, 30, 30)).save(out, "PNG")
    image = base64.b64encode(out.getvalue()).decode()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        server = serve(home, args.port)
        url = f"http://127.0.0.1:{args.port}"
        try:
            (home / "Modelfile").write_text(f"FROM {args.vision_dir.resolve()}\n")
            env = {**os.environ, "OLLAMA_HOST": f"127.0.0.1:{args.port}"}
            cmd = [sys.executable, "-m", "shim.cli", "create", "vision", "-f", str(home / "Modelfile")]
            subprocess.run(cmd, env=env, check=True, capture_output=True)
            image_request(url, image)  # load and warm up
            alone = statistics.median(image_request(url, image) for _ in range(args.repeats))
            gaps, baselines = [], []
            for _ in range(args.repeats):
                stop = threading.Event()
                answers: list[list[float]] = []
                threads = [
                    threading.Thread(target=text_streams, args=(url, answers, stop)) for _ in range(args.streams)
                ]
                for t in threads:
                    t.start()
                time.sleep(1.0)  # the streams run
                quiet = time.perf_counter()  # a window as long, without the image: the machine's own jitter
                time.sleep(alone)
                start = time.perf_counter()
                image_request(url, image)
                end = time.perf_counter()
                time.sleep(0.2)
                stop.set()
                for t in threads:
                    t.join()
                gaps.append(longest(answers, start, end))
                baselines.append(longest(answers, quiet, start))
        finally:
            server.terminate()
            server.wait(timeout=30)
    gap = max(gaps)
    print(f"image request alone: {alone * 1000:.1f} ms (median of {args.repeats})")
    print(
        f"longest text inter-token gap during it ({args.streams} streams): {gap * 1000:.1f} ms",
        f"(worst of {args.repeats})",
    )
    print(f"longest gap in as long a window without it: {max(baselines) * 1000:.1f} ms")
    print(f"ratio gap / alone: {gap / alone:.2f} (the issue's bound: 0.20)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
