"""Sampling at a temperature follows Ollama's chain (its sample package: top_k, temperature, softmax, top_p,
min_p, then a draw), checked by drawing many tokens from known distributions."""

from __future__ import annotations

import collections

import mlx.core as mx
import numpy as np
import pytest

from shim.engine.runner import sampler
from shim.engine.sampling import Chain
from shim.options import GenerationOptions

VOCAB = 64
DRAWS = 4000


def ollama_distribution(logits: np.ndarray, chain: Chain) -> dict[int, float]:
    """Ollama's `sample` for one row, written out: the tokens it may draw and the probability of each."""
    order = np.argsort(-logits, kind="stable")
    if 0 < chain.top_k < len(logits):
        order = order[: chain.top_k]
    probs = np.exp((logits[order] - logits[order].max()) / chain.temperature)
    probs /= probs.sum()
    if chain.top_p:
        passed = np.cumsum(probs) > chain.top_p
        keep = int(np.argmax(passed)) + 1 if passed.any() else len(probs)
        order, probs = order[:keep], probs[:keep]
    if chain.min_p:
        keep = probs >= probs.max() * chain.min_p
        order, probs = order[keep], probs[keep]
    return dict(zip(order.tolist(), (probs / probs.sum()).tolist(), strict=True))


@pytest.mark.parametrize(
    "chain",
    [
        Chain(0.8, top_p=0.9, top_k=40),  # Ollama's defaults
        Chain(0.5, top_p=0.5),  # the temperature before top_p: a narrower nucleus than on the raw distribution
        Chain(1.5, top_p=0.95, min_p=0.05, top_k=5),
        Chain(0.7, min_p=0.2, top_k=10),
        Chain(1.0),
        Chain(2.0, top_k=VOCAB),  # top_k of the whole vocabulary: every token
    ],
    ids=repr,
)
def test_draws_follow_ollamas_chain(chain: Chain) -> None:
    logits = np.random.default_rng(7).normal(0, 1.5, VOCAB).astype(np.float32)
    logprobs = logits - np.log(np.exp(logits).sum())  # what mlx-lm's generators hand a sampler
    rows = mx.array(np.tile(logprobs, (DRAWS, 1)))  # one row per draw: a batch of identical sequences
    drawn = collections.Counter(chain(rows, mx.random.key(3)).tolist())
    expected = ollama_distribution(logits, chain)
    assert set(drawn) <= set(expected)
    assert {t for t, p in expected.items() if p > 0.01} <= set(drawn)
    assert max(abs(drawn[t] / DRAWS - p) for t, p in expected.items()) < 0.025


def test_a_seeded_request_draws_the_same_tokens_again_whatever_else_is_drawn() -> None:
    opts = GenerationOptions(temperature=0.9, seed=42)
    logprobs = mx.log(mx.softmax(mx.array(np.random.default_rng(1).normal(0, 1, (1, VOCAB)), mx.float32), -1))
    first = sampler(opts, VOCAB)
    tokens = [first(logprobs).item() for _ in range(20)]
    second = sampler(opts, VOCAB)
    again = []
    for _ in range(20):
        mx.random.categorical(logprobs)  # a neighbour's draw from MLX's global generator
        again.append(second(logprobs).item())
    assert again == tokens and len(set(tokens)) > 1
    assert sampler(GenerationOptions(temperature=0.9), VOCAB) is sampler(GenerationOptions(temperature=0.9), VOCAB)
