"""The in-process baselines: what mlx-lm itself reaches on this machine, with no server in between."""

from __future__ import annotations

import time

from mlx_lm.generate import BatchGenerator, stream_generate

from scripts.bench_gpu.clients import Stream


def single_stream(model, tokenizer, prompt: str, tokens: int) -> Stream:
    """`stream_generate` from the prompt's text, greedy: TTFT is the first yielded token (tokenizing included,
    as a server must tokenize what it is sent), the decode rate is taken over the rest."""
    started = time.perf_counter()
    first = 0.0
    count = 0
    for response in stream_generate(model, tokenizer, prompt, max_tokens=tokens):
        first = first or time.perf_counter() - started
        count = response.generation_tokens
    return Stream(first, time.perf_counter() - started, count)


def batch(model, prompts: list[list[int]], tokens: int) -> float:
    """Aggregate tokens/s of one `BatchGenerator` (mlx_lm.server's defaults: 32 decoding, 8 prefilling)
    running all `prompts` to `tokens` each, greedy, from insertion to the last token."""
    generator = BatchGenerator(model, max_tokens=tokens)
    try:
        started = time.perf_counter()
        generator.insert(prompts)
        produced = finished = 0
        while finished < len(prompts):
            responses = generator.next_generated()
            produced += len(responses)
            finished += sum(r.finish_reason is not None for r in responses)
        return produced / (time.perf_counter() - started)
    finally:
        generator.close()
