#!/usr/bin/env python3
"""Measure the tiny model's behaviours on held-out prompts: tool calls and fill-in-the-middle.

Greedy decoding through mlx-lm, prompts built from the corpus's held-out pools (never trained), so a
rebuilt model can be compared with the one before: `scripts/tiny_model_accuracy.py MODEL_DIR`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
os.environ.setdefault("MLX_DISABLE_COMPILE", "1")

from scripts.tiny_model import (
    corpus,  # noqa: E402
    fim,  # noqa: E402
)


def greedy(model, tokenizer, ids: list[int], max_tokens: int = 40) -> str:
    import mlx.core as mx
    from mlx_lm.generate import generate_step

    out = []
    for token, _ in generate_step(mx.array(ids), model, max_tokens=max_tokens):
        if token in tokenizer.eos_token_ids:
            break
        out.append(token)
    return str(tokenizer.decode(out, skip_special_tokens=False))


def tool_accuracy(model, tokenizer) -> tuple[int, int]:
    """Each tool, each held-out request, thinking on/off, offered alone or with two others."""
    hits = total = 0
    for i, tool in enumerate(corpus.TOOLS):
        others = [corpus.TOOLS[(i + 1) % len(corpus.TOOLS)], corpus.TOOLS[(i + 3) % len(corpus.TOOLS)]]
        for request in tool.heldout:
            for thinking in (True, False):
                for offered in ([tool], [others[0], tool, others[1]]):
                    text = "listen, " + request.format(**tool.args)
                    prompt = tokenizer.apply_chat_template(
                        [{"role": "user", "content": text}], tools=[t.schema() for t in offered],
                        add_generation_prompt=True, tokenize=False, enable_thinking=thinking,
                    )  # fmt: skip
                    reply = greedy(model, tokenizer, tokenizer.encode(prompt, add_special_tokens=False))
                    answer = reply.split("</think>")[-1].strip()
                    total += 1
                    try:
                        call = json.loads(answer.removeprefix("<tool_call>").removesuffix("</tool_call>"))
                        hits += call == {"name": tool.name, "arguments": tool.args}
                    except ValueError:
                        pass
    return hits, total


def fim_accuracy(model, tokenizer) -> tuple[int, int]:
    """Each function between held-out code before and after it."""
    hits = total = 0
    for fn in fim.FIM_FUNCTIONS:
        for before in fim.HELDOUT_FIM_BEFORE:
            for after in fim.HELDOUT_FIM_AFTER:
                prefix, suffix, middle = fim.fim_parts(fn, before, after)
                ids = tokenizer.encode(fim.fim_prompt(prefix, suffix), add_special_tokens=False)
                total += 1
                hits += greedy(model, tokenizer, ids) == middle
    return hits, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model_dir", type=Path)
    args = parser.parse_args(argv)
    import mlx_lm

    model, tokenizer = mlx_lm.load(str(args.model_dir))
    print("tool calls: {}/{}".format(*tool_accuracy(model, tokenizer)))
    print("fill-in-the-middle: {}/{}".format(*fim_accuracy(model, tokenizer)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
