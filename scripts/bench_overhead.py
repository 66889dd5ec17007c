"""What does the HTTP server cost? Decode tokens/s and time-to-first-token through the Ollama API
(streaming, measured at the client) against in-process `mlx_lm.stream_generate`, same model, same prompt,
greedy, 256 tokens. Runs alternate between the two paths; medians and their ratios are printed.

    python scripts/bench_overhead.py [--model-dir DIR] [--runs 7] [--tokens 256]

Without --model-dir the tiny model is built first (about a minute). Targets (issue 2): HTTP decode
throughput >= 0.95 x in-process, and TTFT no more than 10 ms above in-process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import cli, start_server, stop_server  # noqa: E402  (the same server the tests start)

# Python source: the tiny model continues code for a long time rather than ending a chat turn.
PROMPT = "import os\nimport sys\n\n\ndef main(argv):\n    parser = argparse.ArgumentParser("


class InProcess:
    """mlx-lm's own streaming loop on the same weights, loaded once like the server's copy."""

    def __init__(self, model_dir: Path) -> None:
        import mlx.core as mx
        from mlx_lm import load

        self.model, self.tokenizer = load(str(model_dir))
        self.model.set_dtype(mx.float32)  # what the server does on the CPU backend

    def run(self, tokens: int) -> tuple[float, float, int]:
        from mlx_lm.generate import stream_generate
        from mlx_lm.sample_utils import make_sampler

        started = time.perf_counter()
        first = last = 0.0
        count = 0
        for response in stream_generate(self.model, self.tokenizer, PROMPT, max_tokens=tokens,
                                        sampler=make_sampler(0.0)):  # fmt: skip
            now = time.perf_counter()
            first = first or now
            last, count = now, response.generation_tokens
        return first - started, (count - 1) / (last - first), count


def over_http(client: httpx.Client, url: str, tokens: int) -> tuple[float, float, int]:
    body = {"model": "bench", "prompt": PROMPT, "raw": True,
            "options": {"temperature": 0, "num_predict": tokens, "seed": 0}}  # fmt: skip
    started = time.perf_counter()
    first = last = 0.0
    count = 0
    with client.stream("POST", url + "/api/generate", json=body) as resp:
        for line in resp.iter_lines():
            now = time.perf_counter()
            chunk = json.loads(line)
            if chunk["done"]:
                count, last = chunk["eval_count"], now
            elif not first:
                first = now
    return first - started, (count - 1) / (last - first), count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=256)
    args = parser.parse_args()
    os.environ.setdefault("MLX_DISABLE_COMPILE", "1")
    work = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    model_dir = args.model_dir
    if model_dir is None:
        from registry.tiny_model import build_tiny_model

        model_dir = build_tiny_model(work / "model", seed=0)

    (work / "home").mkdir()
    server = start_server(work / "home")
    try:
        (work / "Modelfile").write_text(f"FROM {model_dir}\n")
        created = cli("create", "bench", "-f", str(work / "Modelfile"), env=server.env)
        assert created.returncode == 0, created.stderr
        local_model = InProcess(model_dir)
        http, local = [], []
        with httpx.Client(timeout=300) as client:
            over_http(client, server.url, args.tokens)  # warm-up: load, caches
            local_model.run(args.tokens)
            for _ in range(args.runs):  # interleaved, so drift on a shared machine hits both paths alike
                http.append(over_http(client, server.url, args.tokens))
                local.append(local_model.run(args.tokens))
    finally:
        stop_server(server)

    def med(rows: list[tuple[float, float, int]], i: int) -> float:
        return statistics.median(r[i] for r in rows)

    print(f"model {model_dir}, {args.runs} runs each, tokens generated: http {med(http, 2):.0f}, "
          f"in-process {med(local, 2):.0f}")  # fmt: skip
    print(f"decode tok/s   in-process {med(local, 1):8.1f}   http {med(http, 1):8.1f}   "
          f"ratio {med(http, 1) / med(local, 1):.3f}  (target >= 0.95)")  # fmt: skip
    print(f"TTFT ms        in-process {med(local, 0) * 1e3:8.2f}   http {med(http, 0) * 1e3:8.2f}   "
          f"added {(med(http, 0) - med(local, 0)) * 1e3:+.2f} ms  (target <= 10 ms)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
