"""The `ollama`-style client commands of `mlx-shim` (list, ps, show, cp, rm, pull, create, run), all over HTTP.

Output follows the ollama CLI: the same tables, show sections, progress and messages, and errors as
`Error: <server's text>` on stderr with exit status 1.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from registry.modelfile import ModelfileError, parse_modelfile
from shim.client import Client, ClientError
from shim.progress import Progress, human_bytes, human_time, table

GREY, BOLD, RESET = "\x1b[90m", "\x1b[1m", "\x1b[0m"


def list_models(client: Client, prefix: str | None, out: TextIO) -> None:
    rows = [["NAME", "ID", "SIZE", "MODIFIED"]]
    for m in client.request("GET", "/api/tags")["models"]:
        if prefix is None or m["name"].lower().startswith(prefix.lower()):
            rows.append([m["name"], m["digest"][:12], human_bytes(m["size"]), human_time(m["modified_at"])])
    out.write(table(rows))


def list_running(client: Client, out: TextIO) -> None:
    rows = [["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]]
    for m in client.request("GET", "/api/ps")["models"]:
        size, vram = m["size"], m.get("size_vram", 0)
        processor = "100% CPU" if vram == 0 else "100% GPU" if vram == size else f"{100 * vram // size}% GPU"
        until = human_time(m["expires_at"], "Never")
        context = str(m.get("context_length", ""))
        rows.append([m["name"], m["digest"][:12], human_bytes(size), processor, context, until])
    out.write(table(rows))


def show(client: Client, name: str, field: str | None, verbose: bool, out: TextIO) -> None:
    shown = client.request("POST", "/api/show", {"model": name, "verbose": verbose})
    if field is not None:
        text = shown.get(field, "")
        out.write(text if field in ("system", "template") else text + "\n")
        return
    out.write(show_info(shown, verbose))


def show_info(shown: dict[str, Any], verbose: bool) -> str:
    """The sections of `ollama show`: Model, Capabilities, Parameters, Metadata/Tensors (verbose), System,
    License (first two lines of each)."""
    sections: list[tuple[str, list[list[str]]]] = []
    info, details = shown.get("model_info") or {}, shown.get("details") or {}
    arch = info.get("general.architecture") or details.get("family", "")
    model = [["", "architecture", arch], ["", "parameters", details.get("parameter_size", "")]]
    for key, label in (("context_length", "context length"), ("embedding_length", "embedding length")):
        if f"{arch}.{key}" in info:
            model.append(["", label, str(info[f"{arch}.{key}"])])
    model.append(["", "quantization", details.get("quantization_level", "")])
    sections.append(("Model", model))
    if shown.get("capabilities"):
        sections.append(("Capabilities", [["", c] for c in shown["capabilities"]]))
    if shown.get("parameters"):
        rows = [["", *line.split()] for line in shown["parameters"].splitlines() if line.strip()]
        width = max(len(r) for r in rows)
        sections.append(("Parameters", [r + [""] * (width - len(r)) for r in rows]))
    if verbose:
        sections.append(("Metadata", [["", k, _metadata_value(v)] for k, v in sorted(info.items())]))
        tensors = shown.get("tensors") or []
        if tensors:
            sections.append(("Tensors", [["", t["name"], t["type"], str(t["shape"])] for t in tensors]))
    for key, title in (("system", "System"), ("license", "License")):
        if shown.get(key):
            sections.append((title, _head(shown[key], 2)))
    return "".join(f"  {title}\n{table(rows)}\n" for title, rows in sections)


def _metadata_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        shown = value[:3]
        more = f" ...+{len(value) - len(shown)} more" if len(value) > len(shown) else ""
        return "[" + " ".join(str(v) for v in shown) + more + "]"
    return "<nil>" if value is None else str(value)


def _head(text: str, n: int) -> list[list[str]]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return [["", line] for line in lines[:n]] + ([["", "..."]] if len(lines) > n else [])


def copy(client: Client, source: str, destination: str, out: TextIO) -> None:
    client.request("POST", "/api/copy", {"source": source, "destination": destination})
    out.write(f"copied '{source}' to '{destination}'\n")


def remove(client: Client, names: list[str], out: TextIO) -> None:
    for name in names:
        try:  # as `ollama rm`: stop the model first, since a deleted name can no longer be unloaded
            client.request("POST", "/api/generate", {"model": name, "keep_alive": 0})
        except ClientError as e:
            if "not found" not in e.message.lower():
                sys.stderr.write(f"Warning: unable to stop model '{name}'\n")
        client.request("DELETE", "/api/delete", {"model": name})
        out.write(f"deleted '{name}'\n")


def pull(client: Client, name: str, err: TextIO) -> None:
    progress = Progress(err)
    try:
        for event in client.stream("/api/pull", {"model": name}):
            progress.pull_event(event)
    finally:
        progress.close()


def import_models(client: Client, names: list[str], err: TextIO) -> None:
    """`mlx-shim import [NAME ...]`: the server imports from its Ollama library (all of it without names),
    drawn as `ollama pull` draws progress. A model named here that was skipped makes the command fail."""
    progress = Progress(err)
    last: dict[str, Any] = {}
    try:
        for event in client.stream("/api/import", {"models": names}):
            progress.pull_event(event)
            last = event
    finally:
        progress.close()
    skipped = last.get("skipped") or []
    if names and skipped:
        raise ClientError("not imported: " + "; ".join(f"{s['model']}: {s['reason']}" for s in skipped))


def create(client: Client, name: str, modelfile: Path, quantize: str | None, err: TextIO) -> None:
    """As `ollama create -f`: the Modelfile is read here; a FROM directory or GGUF file is uploaded blob by
    blob (HEAD, then POST when the server lacks it) and sent as `files`, any other FROM as `from`."""
    try:
        text = modelfile.read_text()
    except OSError as e:
        raise ClientError(f"no Modelfile or safetensors files found: {e.strerror}: {modelfile}") from None
    try:
        parsed = parse_modelfile(text)
    except (ModelfileError, ValueError) as e:
        raise ClientError(str(e)) from None
    body: dict[str, Any] = {"model": name}
    progress = Progress(err)
    try:
        source = Path(parsed.from_).expanduser()
        source = source if source.is_absolute() else modelfile.resolve().parent / source
        if source.is_dir():
            progress.line("gathering model components")
            body["files"] = _upload(client, source, _model_files(source), progress)
        elif source.is_file():
            if not _is_gguf(source):
                raise ClientError(f"{parsed.from_} is not a GGUF file: FROM needs a GGUF, an MLX directory or a model")
            progress.line("gathering model components")
            body["files"] = _upload(client, source.parent, [source], progress)
        else:
            body["from"] = parsed.from_
        for key, value in (("template", parsed.template), ("system", parsed.system)):
            if value is not None:
                body[key] = value
        if parsed.parameters:
            body["parameters"] = parsed.parameters
        if parsed.licenses:
            body["license"] = parsed.licenses
        if parsed.messages:
            body["messages"] = parsed.messages
        if quantize:
            body["quantize"] = quantize
        for event in client.stream("/api/create", body):
            progress.line(event.get("status", ""))
    finally:
        progress.close()


def _is_gguf(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"GGUF"


def _model_files(directory: Path) -> list[Path]:
    """Every file of an MLX model directory but hidden ones; in a folder of GGUFs (no config.json), only the
    `.gguf` files, as `ollama create` picks them."""
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    files = [p for p in files if not any(part.startswith(".") for part in p.relative_to(directory).parts)]
    if not (directory / "config.json").is_file() and any(p.suffix == ".gguf" for p in files):
        return [p for p in files if p.suffix == ".gguf"]
    return files


def _upload(client: Client, directory: Path, paths: list[Path], progress: Progress) -> dict[str, str]:
    files = {}
    for path in paths:
        relative = path.relative_to(directory)
        with path.open("rb") as f:
            digest = "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()
        size = path.stat().st_size
        key = f"copying file {digest}"
        progress.bar(key, key, size, 0)
        if not client.has_blob(digest):
            client.upload_blob(digest, path, lambda done, key=key, size=size: progress.bar(key, key, size, done))
        progress.bar(key, key, size, size)
        files[relative.as_posix()] = digest
    return files


def run(
    client: Client,
    name: str,
    prompt: str | None,
    *,
    think: bool | str | None,
    hide_thinking: bool,
    stdin: TextIO,
    out: TextIO,
) -> None:
    """One prompt (streamed, then exit), or on a terminal a conversation until `/bye` or end of input,
    keeping the history as `ollama run` does. Piped stdin is never a conversation: all of it is the prompt."""
    try:
        client.request("POST", "/api/show", {"model": name})
    except ClientError as e:
        if e.status != 404:
            raise
        try:
            pull(client, name, sys.stderr)  # as `ollama run`: a model that is not here is pulled first
        except ClientError as failed:
            raise (e if failed.status == 404 else failed) from None
    display = _Display(out, hide_thinking)
    if not stdin.isatty():  # as `ollama run`: piped input is one prompt, put before the prompt words
        piped = stdin.read()
        prompt = " ".join(p for p in (piped, prompt) if p) or prompt
    if prompt is not None:
        display.reply(_chat(client, name, [{"role": "user", "content": prompt}], think))
        out.write("\n")
        return
    history: list[dict[str, Any]] = []
    interactive = stdin.isatty()
    while True:
        if interactive:
            out.write(">>> ")
            out.flush()
        line = stdin.readline()
        if not line:
            break
        text = line.rstrip("\n")
        if not text.strip():
            continue
        if text.strip() == "/bye":
            break
        if text.strip() == "/clear":
            history.clear()
            out.write("Cleared session context\n")
            continue
        if text.startswith("/"):
            out.write(f"Unknown command '{text.split()[0]}'. Type /bye to exit.\n")
            continue
        history.append({"role": "user", "content": text})
        try:
            answer = display.reply(_chat(client, name, history, think))
        except KeyboardInterrupt:  # Ctrl-C stops this answer (closing the stream cancels it), not the chat
            history.pop()
            out.write("\n")
            continue
        history.append({"role": "assistant", "content": answer})
        out.write("\n\n")
        out.flush()


def _chat(client: Client, name: str, messages: list[dict[str, Any]], think: bool | str | None) -> Iterator[Any]:
    body: dict[str, Any] = {"model": name, "messages": messages}
    if think is not None:
        body["think"] = think
    for event in client.stream("/api/chat", body):
        yield event.get("message") or {}


class _Display:
    """Thinking between `Thinking...` and `...done thinking.` (grey on a terminal), then the answer."""

    def __init__(self, out: TextIO, hide_thinking: bool) -> None:
        self.out = out
        self.hide_thinking = hide_thinking
        self.color = out.isatty()

    def reply(self, messages: Iterator[dict[str, Any]]) -> str:
        content: list[str] = []
        thinking, opened = "", False
        for message in messages:
            if message.get("thinking") and not self.hide_thinking:
                if not opened:
                    self._write("Thinking...\n", GREY + BOLD, after=GREY)
                    opened = True
                thinking += message["thinking"]
                self.out.write(message["thinking"])
            if message.get("content"):
                if opened:
                    if not thinking.endswith("\n"):
                        self.out.write("\n")
                    self._write("...done thinking.\n\n", GREY + BOLD)
                    opened = False
                content.append(message["content"])
                self.out.write(message["content"])
            self.out.flush()
        if opened and self.color:
            self.out.write(RESET)
        return "".join(content)

    def _write(self, text: str, style: str, after: str = "") -> None:
        self.out.write(f"{style}{text}{RESET}{after}" if self.color else text)
