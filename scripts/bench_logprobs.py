"""What do log-probabilities cost? Decode tokens/s of one in-process completion (the engine's own pipeline,
runner.run_completion) with and without `logprobs`, printed as ratios to the same run without them:

- logprobs, top_logprobs 0 and 20, on a request without logits processors (mlx-lm's own vector is used);
- the same with a repeat penalty, so the model's logits are captured before the penalty (the capture path),
  against the penalty alone.

    python scripts/bench_logprobs.py [--model-dir DIR] [--tokens 256] [--repeats 5]

Without --model-dir the tiny model is built first (about a minute). A request that does not ask for
logprobs runs exactly the code it ran before they existed, so the "off" rows are the baseline.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mlx_lm import load  # noqa: E402

from scripts.tiny_model.build import build_tiny_model  # noqa: E402
from shim.engine.runner import run_completion  # noqa: E402
from shim.options import resolve_options  # noqa: E402

PROMPT = "Tell me a story about the sky"


def tokens_per_second(model: object, tokenizer: object, options: dict[str, object], logprobs: int | None) -> float:
    opts = resolve_options(2048, {}, options)
    prompt = list(tokenizer.encode(PROMPT))  # type: ignore[attr-defined]
    done = run_completion(
        model, tokenizer, prompt, opts, think=False, shift=True, tools=None, emit=lambda piece: None,
        cancelled=threading.Event(), logprobs=logprobs,
    )  # fmt: skip
    return done.eval_count / (done.eval_duration / 1e9)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    model_dir = args.model_dir or build_tiny_model(Path(tempfile.mkdtemp()) / "model", seed=0)
    model, tokenizer = load(str(model_dir))
    plain = {"temperature": 0, "repeat_penalty": 1.0, "num_predict": args.tokens}
    penalised = {**plain, "repeat_penalty": 1.1}
    rows = [
        ("no processors", plain, [("off", None), ("logprobs", 0), ("top_logprobs 20", 20)]),
        ("repeat penalty 1.1 (capture)", penalised, [("off", None), ("logprobs", 0), ("top_logprobs 20", 20)]),
    ]
    tokens_per_second(model, tokenizer, plain, None)  # warm up
    for title, options, variants in rows:
        print(title)
        base = 0.0
        for name, logprobs in variants:
            rates = [tokens_per_second(model, tokenizer, options, logprobs) for _ in range(args.repeats)]
            rate = statistics.median(rates)
            base = base or rate
            print(f"  {name:<16} {rate:8.1f} tok/s  {rate / base:5.2f}x")


if __name__ == "__main__":
    main()
