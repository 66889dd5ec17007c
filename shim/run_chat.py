"""One streamed answer of `mlx-shim run`, as `ollama run` v0.24.0 asks for it and draws it (cmd/cmd.go's
chat and api.Metrics.Summary), and the run options a session changes with `/set`."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from shim.client import Client, ClientError
from shim.commands import pull
from shim.durations import format_go_duration
from shim.repl_display import Display


@dataclass
class RunOptions:
    """ollama's runOptions: what each chat request of the session carries."""

    model: str
    think: bool | str | None = None
    think_set: bool = False  # chosen with --think or /set (no)think, rather than inferred from the model
    hide_thinking: bool = False
    verbose: bool = False
    word_wrap: bool = True
    format: str = ""
    keep_alive: str | None = None
    system: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)


def think_flag(value: str | None) -> bool | str | None:
    """`--think[=VALUE]` as ollama takes it: a bool or a level; None when the flag is not given."""
    if value is None:
        return None
    if value in ("", "true", "false"):
        return value != "false"
    if value in ("high", "medium", "low", "max"):
        return value
    raise ClientError(f'invalid value for --think: "{value}" (must be true, false, high, medium, low, or max)')


def show_or_pull(client: Client, name: str) -> dict[str, Any]:
    """The model's /api/show, after pulling it when it is not here (as ollama run does)."""
    try:
        return client.request("POST", "/api/show", {"model": name})
    except ClientError as e:
        if e.status != 404:
            raise
        try:
            pull(client, name, sys.stderr)
        except ClientError as failed:
            raise (e if failed.status == 404 else failed) from None
    return client.request("POST", "/api/show", {"model": name})


def chat(client: Client, opts: RunOptions, out: TextIO) -> dict[str, Any] | None:
    """One streamed answer to opts.messages; the assistant message, or None when Ctrl-C stopped it (closing
    the stream cancels the request). Then, as ollama, two newlines and with --verbose the timings."""
    body: dict[str, Any] = {"model": opts.model, "messages": opts.messages}
    if opts.format:
        body["format"] = opts.format
    if opts.options:
        body["options"] = opts.options
    if opts.think is not None:
        body["think"] = opts.think
    if opts.keep_alive is not None:
        body["keep_alive"] = opts.keep_alive
    display = Display(out, opts.hide_thinking, opts.word_wrap)
    final: dict[str, Any] = {}
    try:
        for event in client.stream("/api/chat", body):
            display.show(event.get("message") or {})
            final = event
    except KeyboardInterrupt:
        display.close()
        out.write("\n")
        return None
    display.close()
    out.write("\n\n")
    out.flush()
    if opts.verbose:
        sys.stderr.write(summary(final))
    return {"role": "assistant", "content": display.content}


def summary(final: dict[str, Any]) -> str:
    """api.Metrics.Summary: the timings of the last chunk, each line only when it has a value."""
    lines = []
    total, load = final.get("total_duration", 0), final.get("load_duration", 0)
    prompt_count, prompt_ns = final.get("prompt_eval_count", 0), final.get("prompt_eval_duration", 0)
    count, ns = final.get("eval_count", 0), final.get("eval_duration", 0)
    if total > 0:
        lines.append(f"total duration:       {format_go_duration(total)}")
    if load > 0:
        lines.append(f"load duration:        {format_go_duration(load)}")
    if prompt_count > 0:
        lines.append(f"prompt eval count:    {prompt_count} token(s)")
    if prompt_ns > 0:
        lines.append(f"prompt eval duration: {format_go_duration(prompt_ns)}")
        lines.append(f"prompt eval rate:     {prompt_count / (prompt_ns / 1e9):.2f} tokens/s")
    if count > 0:
        lines.append(f"eval count:           {count} token(s)")
    if ns > 0:
        lines.append(f"eval duration:        {format_go_duration(ns)}")
        lines.append(f"eval rate:            {count / (ns / 1e9):.2f} tokens/s")
    return "".join(line + "\n" for line in lines)
