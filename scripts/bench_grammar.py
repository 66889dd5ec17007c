"""Per-token cost of the two grammar engines that can enforce `format` without torch: llguidance and
outlines-core, on the tiny model's 1.5k-token tokenizer and on a realistic 151k-token byte-level BPE.

Both engines follow the same valid document token by token, and each step does what decoding does: write
the mask of allowed tokens into a bitmask, check the sampled token is in it, advance. Printed side by side:
one-time costs (tokenizer side per model, compile per schema) and microseconds per token. The 151k
tokenizer is a byte-level BPE trained offline on the Python sources of this virtualenv (~30 s once, then
cached), so its vocabulary has the size and the byte-level token shapes of Qwen2/Llama-3 vocabularies.
Per-token costs are the best of `--rounds` passes (the machine is shared: the best pass is the one least
disturbed); compile times are single runs per schema.

    .venv/bin/python scripts/bench_grammar.py [--model-dir DIR] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import llguidance
import mlx.core as mx
import numpy as np
import outlines_core
from llguidance.numpy import allocate_token_bitmask, fill_next_token_bitmask
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shim.engine.grammar import COMPILE_OPTIONS, WHITESPACE, Grammars, JsonConstraint  # noqa: E402  (the server's own settings)
from shim.engine.logprobs import byte_decoder  # noqa: E402

# Schemas with the shapes the tests use, and a valid document of each (what the model "samples").
CASES: list[tuple[str, dict[str, Any], Any]] = [
    ("flat", {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"]}, {"name": "Ada Lovelace", "age": 36}),
    ("enum+bool", {"type": "object", "properties": {"color": {"enum": ["red", "green", "blue"]},
                                                    "ok": {"type": "boolean"}, "score": {"type": "number"}},
                   "required": ["color", "ok", "score"]}, {"color": "green", "ok": True, "score": 3.25}),
    ("nested+array", {"type": "object", "properties": {
        "city": {"type": "object", "properties": {"name": {"type": "string"}, "population": {"type": "integer"}},
                 "required": ["name", "population"]},
        "tags": {"type": "array", "items": {"type": "string"}}}, "required": ["city", "tags"]},
     {"city": {"name": "Lisbon", "population": 545923}, "tags": ["coast", "old town", "trams"]}),
    ("json", {"type": "object"}, {"answer": "This reply is JSON.", "n": [1, 2.5, None, True], "x": {"y": "z"}}),
]  # fmt: skip


def bpe_151k(cache: Path) -> Tokenizer:
    if cache.exists():
        return Tokenizer.from_file(str(cache))
    site = Path(np.__file__).resolve().parent.parent
    texts = (p.read_text(encoding="utf-8", errors="replace") for p in sorted(site.rglob("*.py")))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=151_643, min_frequency=1, special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )  # fmt: skip
    tok.train_from_iterator(texts, trainer)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(cache))
    return tok


class Engine:
    name: str
    setup_s: float
    compile_s: list[float]

    def __init__(self, tok: Tokenizer, eos: int) -> None:
        self.compile_s = []

    def compile(self, schema: dict[str, Any]) -> Any:
        raise NotImplementedError

    def start(self, compiled: Any) -> Callable[[int], bool]:
        """A stepper for one document: mask, check `token` is allowed, advance; False if disallowed."""
        raise NotImplementedError


class LLGuidance(Engine):
    name = "llguidance"

    def __init__(self, tok: Tokenizer, eos: int) -> None:
        super().__init__(tok, eos)
        t = time.perf_counter()
        self.lltok = llguidance.LLTokenizer(tok.to_str(), eos_token=eos)
        self.setup_s = time.perf_counter() - t

    def compile(self, schema: dict[str, Any]) -> Any:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(schema, defaults=COMPILE_OPTIONS)
        matcher = llguidance.LLMatcher(self.lltok, grammar, log_level=0)
        assert not matcher.is_error(), matcher.get_error()
        return matcher

    def start(self, compiled: Any) -> Callable[[int], bool]:
        matcher = compiled.deep_copy()  # what the server does per request
        mask = allocate_token_bitmask(1, self.lltok.vocab_size)

        def step(token: int) -> bool:
            fill_next_token_bitmask(matcher, mask)
            if not (mask[0, token >> 5] >> (token & 31)) & 1:
                return False
            return matcher.consume_token(token)

        return step


class OutlinesCore(Engine):
    name = "outlines-core"

    def __init__(self, tok: Tokenizer, eos: int) -> None:
        super().__init__(tok, eos)
        t = time.perf_counter()
        decode = byte_decoder()
        specials = {a.content for a in tok.get_added_tokens_decoder().values()}
        vocab: dict[bytes, list[int]] = {}
        for text, i in tok.get_vocab().items():
            if i != eos and text not in specials:
                vocab.setdefault(bytes(decode[c] for c in text), []).append(i)
        self.vocab = outlines_core.Vocabulary(eos, vocab)
        self.size = tok.get_vocab_size()
        self.eos = eos
        self.setup_s = time.perf_counter() - t

    def compile(self, schema: dict[str, Any]) -> Any:
        regex = outlines_core.json_schema.build_regex_from_schema(json.dumps(schema), WHITESPACE + "?")
        return outlines_core.Index(regex, self.vocab)

    def start(self, compiled: Any) -> Callable[[int], bool]:
        guide = outlines_core.Guide(compiled)
        mask = np.zeros((1, (self.size + 31) // 32), dtype=np.int32)

        def step(token: int) -> bool:
            guide.write_mask_into(mask.ctypes.data, mask.size, mask.itemsize)
            if not (mask[0, token >> 5] >> (token & 31)) & 1:
                return False
            if token == self.eos:
                return guide.is_finished()  # EOS ends the document; outlines-core has no state after it
            guide.advance(token, return_tokens=False)
            return True

        return step


def processor_us(documents: list[tuple[str, dict[str, Any], str]], tok: Tokenizer, eos: int, rounds: int) -> float:
    """The server's whole per-token step: advance, mask, unpack the bits, bias an MLX logits row."""
    grammars = Grammars(tok.to_str(), [eos])
    logits = mx.zeros((1, tok.get_vocab_size()))
    best: list[float] = []
    for _, schema, text in documents:
        ids = tok.encode(text, add_special_tokens=False).ids
        rounds_s = []
        for _ in range(rounds):
            constraint = JsonConstraint(grammars.matcher(schema), grammars, [eos], think_start=None, think_end=None,
                                        thinking=False)  # fmt: skip
            mx.eval(constraint(mx.array([0]), logits))
            t = time.perf_counter()
            for token in ids:
                mx.eval(constraint(mx.array([token]), logits))
            rounds_s.append((time.perf_counter() - t) / len(ids))
        best.append(min(rounds_s))
    return 1e6 * statistics.mean(best)


def run(label: str, tok: Tokenizer, eos: int, rounds: int) -> None:
    print(f"\n== {label}: {tok.get_vocab_size()} tokens")
    documents = [(name, schema, json.dumps(doc, separators=(",", ":"))) for name, schema, doc in CASES]
    results: dict[str, dict[str, float]] = {}
    for engine_type in (LLGuidance, OutlinesCore):
        engine = engine_type(tok, eos)
        best: dict[str, float] = {}  # per document: the best pass, seconds per token
        for name, schema, text in documents:
            ids = tok.encode(text, add_special_tokens=False).ids + [eos]
            if name == "json" and engine_type is OutlinesCore:
                continue  # a regex cannot describe arbitrary nesting: outlines-core has no format:"json"
            t = time.perf_counter()
            compiled = engine.compile(schema)
            engine.compile_s.append(time.perf_counter() - t)
            passes = []
            for _ in range(rounds):
                step = engine.start(compiled)
                t = time.perf_counter()
                for token in ids:
                    assert step(token), f"{engine.name} refused token {token} of {text!r}"
                passes.append((time.perf_counter() - t) / len(ids))
            best[name] = min(passes)
        shared = [best[name] for name, _, _ in documents if name != "json"]
        results[engine.name] = {
            "setup_s": engine.setup_s,
            "compile_ms": 1e3 * statistics.median(engine.compile_s),
            "compile_first_ms": 1e3 * engine.compile_s[0],
            "us_per_token": 1e6 * statistics.mean(shared),
        }
        if "json" in best:
            results[engine.name]["json_us"] = 1e6 * best["json"]
    print(f"{'':>28}" + "".join(f"{name:>16}" for name in results))
    rows = [
        ("tokenizer side, once (s)", "setup_s", "{:.2f}"),
        ("compile, first schema (ms)", "compile_first_ms", "{:.1f}"),
        ("compile, median schema (ms)", "compile_ms", "{:.1f}"),
        ("mask+advance (µs/token)", "us_per_token", "{:.1f}"),
    ]
    for title, key, fmt in rows:
        print(f"{title:>28}" + "".join(f"{fmt.format(r[key]):>16}" for r in results.values()))
    print(f"{'format json (µs/token)':>28}{results['llguidance']['json_us']:>16.1f}{'(no CFG)':>16}")
    processor = processor_us(documents, tok, eos, rounds)
    print(f"{'logits processor (µs/token)':>28}{processor:>16.1f}   (what the server runs: llguidance -> MLX row)")
    a, b = results["llguidance"]["us_per_token"], results["outlines-core"]["us_per_token"]
    print(f"{'llguidance/outlines-core':>28}{a / b:>16.2f}x per token on the same schema documents")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", default=os.environ.get("MLX_SHIM_TEST_MODEL_DIR"))
    parser.add_argument("--bpe-cache", default=str(Path.home() / ".cache/mlx-shim/bench-bpe-151k.json"))
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    if args.model_dir:
        model_dir = Path(args.model_dir)
    else:
        from scripts.tiny_model.build import build_tiny_model

        model_dir = build_tiny_model(Path(tempfile.mkdtemp()) / "model", seed=0)
    tiny = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    run("tiny model tokenizer", tiny, tiny.token_to_id("<|im_end|>"), args.rounds)
    big = bpe_151k(Path(args.bpe_cache))
    run("byte-level BPE trained offline", big, big.token_to_id("<|endoftext|>"), args.rounds)


if __name__ == "__main__":
    main()
