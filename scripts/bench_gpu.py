"""GPU benchmark anyone can run (issue 12, deliverable 5): mlx-shim against in-process mlx-lm and mlx_lm.server,
measured side by side in one run, on random-weight 4-bit models with Qwen2.5's real shapes and full vocabulary.

Parts (`--only`, default all), each measured in every round; rounds interleave the parts so drift hits all alike:
  inproc  mlx-lm in this process: `stream_generate` single stream from the prompt's text, as a server gets it
          (TTFT and decode tok/s, --prompt-tokens prompt, --single-tokens tokens; the TTFT is the median of it
          and --ttft-probes more requests, tokenizing included; the tokenizing alone is printed too) and
          `BatchGenerator` at each --clients batch size (aggregate tok/s)
  server  mlx-shim over HTTP (`python -m shim.cli serve`, OLLAMA_NUM_PARALLEL unset; a second server with
          OLLAMA_NUM_PARALLEL=N when --parallel N): the same single stream, and 1/2/4/8/16 concurrent streaming
          clients, on /api/generate (raw prompt) and /v1/completions (--endpoints)
  mlxlm   `python -m mlx_lm.server --model DIR`, its /v1/completions, the same single stream and concurrencies
  chat    a --chat-turns conversation through mlx-shim's /api/chat (user turns of --chat-user-tokens, replies of
          --chat-tokens), TTFT per turn (the prompt cache's effect)
Aggregate tok/s = tokens received / wall time; every prompt is unique from its first token (no prefix-cache
reuse) and of exact length; greedy decoding; random weights never emit EOS, so every request runs to its limit.
Every part computes attention on the kernels mlx-shim serves with on CUDA, MLX's own (MLX_CUDA_USE_CUDNN_SDPA=0,
shim/accelerator.py), unless MLX_CUDA_USE_CUDNN_SDPA is set (=1: cuDNN's, everywhere): in-process mlx-lm and
mlx_lm.server would otherwise run cuDNN's, whose plan per new prompt length this benchmark's warm-up pays once
(each part's prompts have one length) and a server on real traffic pays per request; one kernel set for all
measures the servers, not the kernels. `scripts/bench_shapes.py` measures the kernels.
Printed: medians of the rounds and medians of per-round ratios (HTTP single stream / in-process; mlx-shim /
mlx_lm.server at each concurrency; each server / in-process BatchGenerator). --out writes them and every round
as JSON after each round (a run cut short still leaves its data); --plot draws a PNG (matplotlib, the `bench`
extra), also later from the JSON: `python scripts/bench_gpu.py --replot results.json --plot bench.png`.

The server's own per-token cost on a CPU (a vocabulary small enough that the model's compute does not hide
it; the CPU ms per token rows do not depend on how busy the machine is):
    PYTHONPATH=. python scripts/bench_gpu.py --config tiny --vocab 9284 --rounds 5 --tokens 128 \
        --clients 1,16 --parallel 16 --only inproc,server --endpoints generate --compare /tmp/base

Smoke test on a CPU (every part end to end, the full vocabulary; 3 minutes on two shared cores):
    PYTHONPATH=. python scripts/bench_gpu.py --config tiny --rounds 2 --tokens 16 --single-tokens 32 \
        --parallel 16 --out /tmp/tiny.json --plot /tmp/tiny.png

On an NVIDIA H100/H200 (the device machine runs 10 minutes a command; the project is not installed there;
mlx-notes.md's set-up, which worked on an H200):
 1. Here, download the wheels its Python 3.12 lacks (it has numpy, transformers, tokenizers, huggingface_hub,
    jinja2; if `python3 -c 'import httpx'` fails there, add httpx, httpcore, h11, anyio, sniffio):
      pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_35_x86_64 \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d /tmp/gpu-wheels mlx==0.32.4 mlx-cuda-13==0.32.4 mlx-lm==0.32.2 starlette hypercorn orjson \
        llguidance gguf zstandard h2 wsproto priority hpack hyperframe
    (about 95 MB, 90 of them mlx_cuda_13-0.32.4-py3-none-manylinux_2_35_x86_64.whl: over one call's 64 MiB).
    `split -n 2` the CUDA wheel; put its first part and the other wheels in an untracked folder of the
    worktree (e.g. .gpu-wheels/, untracked files travel with the tree).
 2. Call 1:  mkdir -p /tmp/w && cp .gpu-wheels/* /tmp/w/
    Then put only the second part in .gpu-wheels/ and, at once (the machine stays warm between calls), call 2:
      cp .gpu-wheels/* /tmp/w/ && cd /tmp/w && cat x?? > mlx_cuda_13-0.32.4-py3-none-manylinux_2_35_x86_64.whl \
        && rm x?? && python3 -m pip install --no-deps --target /tmp/site /tmp/w/*.whl
    (the joined wheel keeps its exact downloaded name: pip reads version and tags from it).
 3. Each run, in the same command (models are cached in --models-dir, /tmp/mlx-shim-bench-models, while the
    machine stays warm; the image's nvidia/* libraries must be on LD_LIBRARY_PATH):
      export PYTHONPATH=.:/tmp/site LD_LIBRARY_PATH=$(python3 -c 'import nvidia,os,glob; print(":".join(
        d for p in nvidia.__path__ for d in glob.glob(os.path.join(p, "*", "lib"))))')
      python3 scripts/bench_gpu.py --config 0.5b --parallel 16 --out $OUT/gpu-0.5b.json      # ~8 min
      python3 scripts/bench_gpu.py --config 7b --parallel 16 --endpoints generate --clients 1,2,4 \
          --out $OUT/gpu-7b-a.json                                                              # ~8 min
      python3 scripts/bench_gpu.py --config 7b --parallel 16 --endpoints generate --clients 8,16 \
          --single-tokens 0 --only inproc,server,mlxlm --out $OUT/gpu-7b-b.json                 # ~7 min
    Before/after in one run: export the old code into an untracked folder of the worktree first (it travels
    with the tree), e.g. `mkdir .gpu-base && git archive e91602f | tar -x -C .gpu-base`, then
      python3 scripts/bench_gpu.py --config 0.5b --parallel 16 --compare .gpu-base --endpoints generate \
          --only inproc,server --out $OUT/gpu-0.5b-compare.json
    and a setting against the default, e.g. prefill groups of 16 against 8:
      python3 scripts/bench_gpu.py --config 0.5b --parallel 16 --shim-env MLX_SHIM_PREFILL_GROUP=16 \
          --endpoints generate --only inproc,server --single-tokens 0 --out $OUT/gpu-0.5b-group.json
    The run times are estimates from mlx-notes.md's H200 figures, not measured with this script.
    --budget-minutes (default 9) starts no round that would end past it; fewer than 5 rounds are flagged.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mlx.core as mx  # noqa: E402

from scripts.bench_gpu import clients as http  # noqa: E402
from scripts.bench_gpu import inproc, report, servers  # noqa: E402
from scripts.bench_gpu.models import CONFIGS, FULL_VOCAB, build_model  # noqa: E402
from scripts.bench_gpu.workload import Prompts  # noqa: E402
from shim.accelerator import CUDNN_ATTENTION, backend  # noqa: E402

PARTS = ("inproc", "server", "mlxlm", "chat")
PROBE_TOKENS = 8  # tokens of each TTFT probe (Bench._ttft)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", choices=sorted(CONFIGS), default="0.5b")
    p.add_argument("--vocab", type=int, default=FULL_VOCAB, help="vocabulary size (default Qwen2.5's 151,936)")
    p.add_argument("--models-dir", type=Path, default=Path(tempfile.gettempdir()) / "mlx-shim-bench-models")
    p.add_argument("--only", default=",".join(PARTS), help=f"parts to run, of {','.join(PARTS)}")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--budget-minutes", type=float, default=9.0, help="start no round that would end later")
    p.add_argument("--prompt-tokens", type=int, default=512, help="single-stream prompt length")
    p.add_argument("--single-tokens", type=int, default=256, help="single-stream tokens (0: no single stream)")
    p.add_argument("--ttft-probes", type=int, default=6, help="more single requests per round for its TTFT")
    p.add_argument("--clients", type=_ints, default=[1, 2, 4, 8, 16], help="concurrencies, e.g. 1,2,4,8,16")
    p.add_argument("--concurrent-prompt-tokens", type=int, default=64, help="prompt length of concurrent requests")
    p.add_argument("--tokens", type=int, default=128, help="tokens per concurrent request")
    p.add_argument("--requests", type=int, default=1, help="requests per client per measurement, back to back")
    p.add_argument("--endpoints", default="generate,completions", help="mlx-shim endpoints: generate,completions")
    p.add_argument("--parallel", type=int, help="also measure an mlx-shim with OLLAMA_NUM_PARALLEL=N")
    p.add_argument("--compare", type=Path, help="also measure the mlx-shim of another checkout (before/after)")
    p.add_argument(
        "--shim-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="also measure an mlx-shim with this setting (and --parallel's), e.g. MLX_SHIM_PREFILL_GROUP=16",
    )
    p.add_argument("--chat-turns", type=int, default=10)
    p.add_argument("--chat-user-tokens", type=int, default=48, help="length of each user message")
    p.add_argument("--chat-tokens", type=int, default=32, help="num_predict of each chat turn")
    p.add_argument("--out", type=Path, help="write the results as JSON (after every round)")
    p.add_argument("--plot", type=Path, help="write a PNG plot (needs matplotlib)")
    p.add_argument("--replot", type=Path, help="only draw --plot from a JSON written by --out")
    return p.parse_args()


class Bench:
    """Everything one run measures; `round()` measures every part once."""

    def __init__(self, args: argparse.Namespace, model_dir: Path, parts: set[str]) -> None:
        from mlx_lm import load
        from mlx_lm.utils import load_tokenizer

        self.args, self.parts = args, parts
        if "inproc" in parts:
            self.model, self.tokenizer = load(str(model_dir))
        else:
            self.tokenizer = load_tokenizer(model_dir)
        self.prompts = Prompts(self.tokenizer)
        self.home = Path(tempfile.mkdtemp(prefix="bench-gpu-"))
        self.servers: list[servers.Server] = []
        # (label, url, send) per HTTP source; send(url, prompt, tokens) -> Stream
        self.sources: list[tuple[str, str, Any]] = []
        self.pids: dict[str, int] = {}  # label -> server process, for its CPU time per token
        try:
            self._start_servers(model_dir, [e for e in args.endpoints.split(",") if e])
        except BaseException:
            self.close(failed=True)
            raise

    def _start_servers(self, model_dir: Path, endpoints: list[str]) -> None:
        args, parts = self.args, self.parts
        if parts & {"server", "chat"}:
            self.shim = self._start(servers.start_mlx_shim, "mlx-shim", self.home, model_dir, None)
            if "server" in parts:
                self._add_shim_sources("mlx-shim", self.shim.url, endpoints)
        if "server" in parts and args.parallel:
            label = f"mlx-shim parallel {args.parallel}"
            shim_n = self._start(servers.start_mlx_shim, label, self.home, model_dir, args.parallel)
            self._add_shim_sources(label, shim_n.url, endpoints)
        if "server" in parts and args.compare:
            label = f"{args.compare.name} parallel {args.parallel}" if args.parallel else f"{args.compare.name}"
            other = self._start(servers.start_mlx_shim, label, self.home, model_dir, args.parallel, args.compare)
            self._add_shim_sources(label, other.url, endpoints)
        for setting in args.shim_env if "server" in parts else ():
            name, _, value = setting.partition("=")
            label = f"mlx-shim {setting}" + (f" parallel {args.parallel}" if args.parallel else "")
            tuned = self._start(servers.start_mlx_shim, label, self.home, model_dir, args.parallel, None, {name: value})
            self._add_shim_sources(label, tuned.url, endpoints)
        if "mlxlm" in parts:
            mlx_lm_server = self._start(servers.start_mlx_lm_server, self.home, model_dir)
            send = lambda url, prompt, n: http.completions(url, prompt, n, model=None)  # noqa: E731
            self.sources.append((report.MLX_LM, mlx_lm_server.url, send))
            self.pids[report.MLX_LM] = mlx_lm_server.process.pid

    def _start(self, start, *args: Any) -> servers.Server:
        started = time.perf_counter()
        server = start(*args)
        self.servers.append(server)
        print(f"  {server.name} up at {server.url} in {time.perf_counter() - started:.1f} s", flush=True)
        return server

    def _add_shim_sources(self, label: str, url: str, endpoints: list[str]) -> None:
        senders = {"generate": (http.generate, "/api/generate"), "completions": (http.completions, "/v1/completions")}
        for endpoint in endpoints:
            send, path = senders[endpoint]
            self.sources.append((f"{label} {path}", url, send))
            self.pids[f"{label} {path}"] = self.servers[-1].process.pid

    def close(self, failed: bool) -> None:
        """Stop the servers; delete their store (the 7B's blobs are 4.5 GB) unless the run failed (their logs)."""
        for server in self.servers:
            servers.stop(server)
        if failed:
            print(f"server logs kept in {self.home}", flush=True)
        else:
            shutil.rmtree(self.home, ignore_errors=True)

    @property
    def labels(self) -> list[str]:
        return [label for label, _, _ in self.sources]

    def _ttft(self, first: float, probe: Callable[[], float], warm: bool) -> float:
        """The single-stream TTFT in ms: the median of the stream's own and of --ttft-probes more requests like
        it (PROBE_TOKENS tokens each, back to back): one request's TTFT varies by a few ms from round to round
        on a GPU, as much as the few ms the server adds."""
        times = [first] + [probe() for _ in range(0 if warm else self.args.ttft_probes)]
        return statistics.median(times) * 1000

    def _tokenize_ms(self, tokens: int) -> float:
        """The median time in ms the tokenizer takes to encode a prompt like the single stream's (part of
        every TTFT above: in-process mlx-lm and the servers alike start from the text)."""
        times = []
        for _ in range(max(self.args.ttft_probes, 1)):
            text = self.prompts.text(tokens)
            started = time.perf_counter()
            self.tokenizer.encode(text)
            times.append(time.perf_counter() - started)
        return statistics.median(times) * 1000

    def _probe(self, send: Callable[[str, str, int], http.Stream], url: str) -> float:
        return send(url, self.prompts.text(self.args.prompt_tokens), PROBE_TOKENS).ttft

    def round(self, warm: bool = False) -> dict[str, float]:
        """One measurement of every part; `warm` runs the same shapes with few tokens and records nothing
        useful (the first sight of a shape costs MLX CUDA a kernel compilation)."""
        a, r = self.args, {}
        single, tokens = (min(a.single_tokens, 4), min(a.tokens, 4)) if warm else (a.single_tokens, a.tokens)
        if "inproc" in self.parts:
            if single:
                s = inproc.single_stream(self.model, self.tokenizer, self.prompts.text(a.prompt_tokens), single)
                self._check(report.INPROC, s.tokens, single)

                def probe() -> float:
                    text = self.prompts.text(a.prompt_tokens)
                    return inproc.single_stream(self.model, self.tokenizer, text, PROBE_TOKENS).ttft

                ttft = self._ttft(s.ttft, probe, warm)
                r |= {f"single/{report.INPROC}/ttft": ttft, f"single/{report.INPROC}/tps": s.decode_tps}
                r[f"single/{report.INPROC}/tokenize"] = self._tokenize_ms(a.prompt_tokens)
            for n in a.clients:
                ids = [self.tokenizer.encode(self.prompts.text(a.concurrent_prompt_tokens)) for _ in range(n)]
                cpu = time.process_time()
                r[f"agg/{report.BATCH}/{n}/tps"] = inproc.batch(self.model, ids, tokens)
                r[f"cpu/{report.BATCH}/{n}/ms"] = (time.process_time() - cpu) * 1000 / (n * tokens)
            self._progress("in-process")
        for label, url, send in self.sources:
            if single:
                s = send(url, self.prompts.text(a.prompt_tokens), single)
                self._check(label, s.tokens, single)
                probe = functools.partial(self._probe, send, url)
                ttft = self._ttft(s.ttft, probe, warm)
                r |= {f"single/{label}/ttft": ttft, f"single/{label}/tps": s.decode_tps}
            for n in a.clients:
                texts = [[self.prompts.text(a.concurrent_prompt_tokens) for _ in range(a.requests)] for _ in range(n)]
                cpu = servers.cpu_seconds(self.pids[label])
                agg = http.concurrent(n, a.requests, lambda i, j, t=texts: send(url, t[i][j], tokens))  # noqa: B023
                if cpu is not None and (after := servers.cpu_seconds(self.pids[label])) is not None:
                    r[f"cpu/{label}/{n}/ms"] = (after[0] - cpu[0]) * 1000 / agg.total_tokens
                    r[f"loop/{label}/{n}/ms"] = (after[1] - cpu[1]) * 1000 / agg.total_tokens
                r |= {
                    f"agg/{label}/{n}/tps": agg.tokens_per_s,
                    f"agg/{label}/{n}/ttft": agg.median_ttft * 1000,
                    f"agg/{label}/{n}/request": agg.median_duration * 1000,
                }
                self._check(label, agg.fewest_tokens, tokens)
            self._progress(label)
        if "chat" in self.parts:
            messages = [{"role": "system", "content": f"{self.prompts.word()} You are a helpful assistant."}]
            for turn in range(1, (2 if warm else a.chat_turns) + 1):
                messages.append({"role": "user", "content": self.prompts.text(a.chat_user_tokens)})
                ttft, text = http.chat_turn(self.shim.url, messages, a.chat_tokens)
                messages.append({"role": "assistant", "content": text})
                r[f"chat/{turn}/ttft"] = ttft * 1000
            self._progress("chat")
        return r

    @staticmethod
    def _check(label: str, got: int, asked: int) -> None:
        if got < asked:
            print(f"    warning: a {label} stream ended after {got} of {asked} tokens (EOS?)", flush=True)

    @staticmethod
    def _progress(part: str) -> None:
        print(f"    {part} done at {time.strftime('%H:%M:%S')}", flush=True)


def write_json(path: Path, meta: dict[str, Any], rounds: list[dict[str, float]], summary: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": meta, **summary, "rounds": rounds}, indent=2) + "\n")


def main() -> int:
    args = parse_args()
    if args.replot:
        data = json.loads(args.replot.read_text())
        meta = data["meta"]
        report.plot(args.plot, data, meta["sources"], meta["clients"], meta["title"])
        return 0
    parts = {p for p in args.only.split(",") if p}
    if unknown := parts - set(PARTS):
        raise SystemExit(f"unknown parts {sorted(unknown)}; choose from {','.join(PARTS)}")
    if os.environ.get("MLX_DISABLE_COMPILE"):
        print("warning: MLX_DISABLE_COMPILE is set; this benchmark should run with compilation on", flush=True)
    os.environ.setdefault(CUDNN_ATTENTION, "0")  # read at MLX's first attention; inherited by every server
    t0 = time.perf_counter()
    device = mx.default_device()
    dtype = mx.float16 if device == mx.gpu else mx.float32  # float16 on the GPU; float32 on a CPU (bf/f16 is slow)
    print(f"{time.strftime('%H:%M:%S')} building {args.config} (vocab {args.vocab}, 4-bit, {dtype}) on {device}",
          flush=True)  # fmt: skip
    model_dir = build_model(args.models_dir / f"qwen2.5-{args.config}-v{args.vocab}", args.config, args.vocab, dtype)
    print(f"  model at {model_dir} ({time.perf_counter() - t0:.1f} s)", flush=True)
    bench = Bench(args, model_dir, parts)
    title = f"random-weight 4-bit Qwen2.5-{args.config} shapes, vocab {args.vocab}, {device}"
    if backend() == "cuda":
        title += f", {CUDNN_ATTENTION}={os.environ[CUDNN_ATTENTION]}"
    meta = {"title": title, "config": args.config, "vocab": args.vocab, "device": str(device), "parts": sorted(parts),
            "sources": bench.labels, "clients": args.clients, "argv": sys.argv[1:],
            "shapes": {"prompt": args.prompt_tokens, "single_tokens": args.single_tokens, "tokens": args.tokens,
                       "concurrent_prompt": args.concurrent_prompt_tokens, "requests": args.requests}}  # fmt: skip
    rounds: list[dict[str, float]] = []
    summary: dict[str, Any] = {}
    failed = True
    try:
        started = time.perf_counter()
        bench.round(warm=True)
        print(f"  warm-up done in {time.perf_counter() - started:.1f} s", flush=True)
        for i in range(args.rounds):
            elapsed = time.perf_counter() - t0
            longest = max((rd["_seconds"] for rd in rounds), default=0.0)
            if rounds and elapsed + longest * 1.1 > args.budget_minutes * 60:
                print(f"stopping after {len(rounds)} rounds: --budget-minutes {args.budget_minutes}", flush=True)
                break
            print(f"{time.strftime('%H:%M:%S')} round {i + 1}/{args.rounds}", flush=True)
            started = time.perf_counter()
            r = bench.round()
            r["_seconds"] = time.perf_counter() - started
            rounds.append(r)
            summary = report.summarise(rounds, bench.labels, args.clients)
            if args.out:
                write_json(args.out, meta, rounds, summary)
        failed = False
    finally:
        bench.close(failed)
    if not rounds:
        return 1
    note = "" if len(rounds) >= 5 else f"  (only {len(rounds)} rounds: fewer than the 5 the issue asks for)"
    header = f"\n{title}\nmedians of {len(rounds)} rounds{note}; total {time.perf_counter() - t0:.0f} s"
    report.print_table(summary, header, bench.labels, args.clients, meta["shapes"])
    if args.out:
        print(f"results written to {args.out}", flush=True)
    if args.plot:
        report.plot(args.plot, summary, bench.labels, args.clients, title)
    return 0


if __name__ == "__main__":
    sys.exit(main())
