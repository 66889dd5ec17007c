"""Summaries of the rounds: medians of every measurement, medians of per-round ratios (each ratio is taken
between measurements of the same round, so slow drift of the machine cancels), the printed table, the plot."""

from __future__ import annotations

import statistics
import textwrap
from pathlib import Path
from typing import Any

INPROC = "in-process"
BATCH = "in-process BatchGenerator"
MLX_LM = "mlx_lm.server /v1/completions"


def round_ratios(r: dict[str, float], sources: list[str], clients: list[int]) -> dict[str, float]:
    """The ratios the issue asks for, within one round `r` (missing measurements are skipped)."""
    out: dict[str, float] = {}
    for source in sources:
        if f"single/{INPROC}/tps" in r and f"single/{source}/tps" in r:
            out[f"single decode {source} / {INPROC}"] = r[f"single/{source}/tps"] / r[f"single/{INPROC}/tps"]
            out[f"single TTFT {source} - {INPROC} (ms)"] = r[f"single/{source}/ttft"] - r[f"single/{INPROC}/ttft"]
        for n in clients:
            mine = r.get(f"agg/{source}/{n}/tps")
            if mine is None:
                continue
            if source != MLX_LM and f"agg/{MLX_LM}/{n}/tps" in r:
                out[f"{source} / {MLX_LM} @{n}"] = mine / r[f"agg/{MLX_LM}/{n}/tps"]
            if f"agg/{BATCH}/{n}/tps" in r:
                out[f"{source} / {BATCH} @{n}"] = mine / r[f"agg/{BATCH}/{n}/tps"]
    turns = sorted(int(k.split("/")[1]) for k in r if k.startswith("chat/"))
    if turns:
        out[f"chat TTFT turn {turns[-1]} / turn 1"] = r[f"chat/{turns[-1]}/ttft"] / r["chat/1/ttft"]
    return out


def summarise(rounds: list[dict[str, float]], sources: list[str], clients: list[int]) -> dict[str, Any]:
    keys = [k for k in rounds[0] if all(k in r for r in rounds)]
    ratios = [round_ratios(r, sources, clients) for r in rounds]
    return {
        "medians": {k: statistics.median(r[k] for r in rounds) for k in keys},
        "ratios": {k: statistics.median(x[k] for x in ratios) for k in ratios[0]},
    }


def print_table(summary: dict[str, Any], header: str, sources: list[str], clients: list[int], shapes: dict) -> None:
    med, ratios = summary["medians"], summary["ratios"]
    print(header, flush=True)
    if any(k.startswith("single/") for k in med):
        print(f"\nSingle stream ({shapes['prompt']}-token prompt, {shapes['single_tokens']} tokens)"
              f"{'':<8}TTFT ms  decode tok/s  decode vs in-process  TTFT added (ms)")  # fmt: skip
        for source in [INPROC, *sources]:
            if f"single/{source}/tps" not in med:
                continue
            ratio = ratios.get(f"single decode {source} / {INPROC}")
            added = ratios.get(f"single TTFT {source} - {INPROC} (ms)")
            ratio_text = "" if ratio is None else f"{ratio:.2f}x"
            added_text = "" if added is None else f"{added:+.1f}"
            print(f"  {source:<52}{med[f'single/{source}/ttft']:>8.1f}  {med[f'single/{source}/tps']:>12.1f}"
                  f"  {ratio_text:>20}  {added_text:>15}")  # fmt: skip
        if (tokenize := med.get(f"single/{INPROC}/tokenize")) is not None:
            print(f"  every TTFT includes tokenizing the prompt: {tokenize:.2f} ms (in-process, median)")
    agg_sources = [s for s in [BATCH, *sources] if any(f"agg/{s}/{n}/tps" in med for n in clients)]
    if agg_sources:
        cols = "".join(f"{n:>9}" for n in clients)
        print(f"\nAggregate tok/s ({shapes['concurrent_prompt']}-token prompts, {shapes['tokens']} tokens each), "
              f"by concurrent streams{'':<2}{cols}")  # fmt: skip
        for s in agg_sources:
            print(f"  {s:<76}" + "".join(_cell(med.get(f"agg/{s}/{n}/tps")) for n in clients))
        servers = [s for s in agg_sources if s != BATCH]
        print("Median TTFT ms under load")
        for s in servers:
            print(f"  {s:<76}" + "".join(_cell(med.get(f"agg/{s}/{n}/ttft")) for n in clients))
        print("Median request time ms under load (sent to last byte)")
        for s in servers:
            print(f"  {s:<76}" + "".join(_cell(med.get(f"agg/{s}/{n}/request")) for n in clients))
        if any(k.startswith("cpu/") for k in med):
            print("CPU ms per token (the server process, all threads; in-process: this process)")
            for s in agg_sources:
                print(f"  {s:<76}" + "".join(_cell(med.get(f"cpu/{s}/{n}/ms"), " ") for n in clients))
            print("  of which the main thread (mlx-shim: the event loop; mlx_lm.server: its HTTP thread)")
            for s in servers:
                print(f"  {s:<76}" + "".join(_cell(med.get(f"loop/{s}/{n}/ms"), " ") for n in clients))
        print("Ratios (medians of per-round ratios)")
        for s in servers:
            for other in (MLX_LM, BATCH):
                cells = [ratios.get(f"{s} / {other} @{n}") for n in clients]
                if any(c is not None for c in cells):
                    label = f"{s} / {other.split(' /')[0]}"
                    print(f"  {label:<76}" + "".join(_cell(c, "x") for c in cells))
    chat = sorted(int(k.split("/")[1]) for k in med if k.startswith("chat/"))
    if chat:
        last = chat[-1]
        ratio = ratios[f"chat TTFT turn {last} / turn 1"]
        print(f"\nChat through mlx-shim /api/chat (prompt cache on): TTFT turn 1 {med['chat/1/ttft']:.1f} ms, "
              f"turn {last} {med[f'chat/{last}/ttft']:.1f} ms, turn {last} / turn 1 {ratio:.2f}x")  # fmt: skip


def _cell(value: float | None, suffix: str = "") -> str:
    return f"{'-':>9}" if value is None else f"{value:>8.{2 if suffix else 1}f}{suffix or ' '}"


def plot(path: Path, summary: dict[str, Any], sources: list[str], clients: list[int], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    med = summary["medians"]
    turns = sorted(int(k.split("/")[1]) for k in med if k.startswith("chat/"))
    fig, axes = plt.subplots(1, 2 if turns else 1, figsize=(12 if turns else 6.5, 4.5), squeeze=False)
    left = axes[0][0]
    for s in [BATCH, *sources]:
        ys = [med.get(f"agg/{s}/{n}/tps") for n in clients]
        if all(y is not None for y in ys):
            left.plot(clients, ys, marker="o", label=s)
    left.set(xlabel="concurrent streams", ylabel="aggregate tokens/s", xscale="log", ylim=(0, None))
    left.set_xticks(clients, [str(n) for n in clients])
    left.minorticks_off()
    left.set_title(textwrap.fill(title, 70), fontsize=9)  # the title names the kernels too: wrapped, not cut
    left.legend(fontsize=7)
    if turns:  # the chat part ran
        right = axes[0][1]
        right.plot(turns, [med[f"chat/{t}/ttft"] for t in turns], marker="o", label="mlx-shim /api/chat")
        right.set(xlabel="chat turn", ylabel="time to first token (ms)", xticks=turns)
        right.set_title("Prompt-cache reuse across chat turns")
        right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot written to {path}", flush=True)
