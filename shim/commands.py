"""The `ollama`-style client commands of `mlx-shim` (list, ps, show, cp, rm, stop, pull, create, --version), all
over HTTP (`run` is shim/interactive.py).

Output follows the ollama CLI: the same tables, show sections, progress and messages, and errors as
`Error: <server's text>` on stderr with exit status 1.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any, TextIO

from registry.modelfile import parse_modelfile
from registry.names import InvalidName, ModelName
from shim.client import Client, ClientError
from shim.config import VERSION
from shim.progress import Progress, human_bytes, human_time, table


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


def version(client: Client, out: TextIO) -> None:
    """`--version` as ollama's versionHandler: the server's version, and the client's when they differ."""
    try:
        server = client.request("GET", "/api/version")["version"]
    except ClientError:
        out.write("Warning: could not connect to a running Ollama instance\n")
        server = ""
    if server:
        out.write(f"ollama version is {server}\n")
    if server != VERSION:
        out.write(f"Warning: client version is {VERSION}\n")


def stop(client: Client, name: str) -> None:
    """As `ollama stop`: unload the model now (keep_alive 0)."""
    try:
        client.request("POST", "/api/generate", {"model": name, "keep_alive": 0})
    except ClientError as e:
        if "not found" in e.message:
            raise ClientError(f'couldn\'t find model "{name}" to stop', e.status) from None
        raise


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


def create(client: Client, name: str, modelfile: Path | None, quantize: str | None, err: TextIO) -> None:
    """As `ollama create [-f Modelfile]`: the Modelfile (./Modelfile, or `FROM .` without one) is read here; a
    FROM directory or GGUF file is uploaded blob by blob (HEAD, then POST when the server lacks it) and sent
    as `files`, any other FROM as `from`. Errors are Ollama's, naming the file or path they are about."""
    try:
        ModelName.parse(name)
    except InvalidName:
        raise ClientError(f"invalid model name: {name}") from None
    text, base = _read_modelfile(modelfile)
    try:
        parsed = parse_modelfile(text)
    except ValueError as e:  # ModelfileError, or a PARAMETER's value
        raise ClientError(str(e)) from None
    for warning in parsed.warnings:
        print(warning)
    body: dict[str, Any] = {"model": name}
    progress = Progress(err)
    try:
        source = base / Path(parsed.from_).expanduser()  # an absolute FROM stays itself
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
        for key in ("template", "system", "renderer", "parser", "requires"):
            if getattr(parsed, key) is not None:
                body[key] = getattr(parsed, key)
        if parsed.parameters:
            body["parameters"] = parsed.parameters
        if parsed.licenses:
            body["license"] = parsed.licenses
        if parsed.messages:
            body["messages"] = parsed.messages
        if quantize:
            body["quantize"] = quantize
        try:
            for event in client.stream("/api/create", body):
                progress.line(event.get("status", ""))
        except ClientError as e:
            if "from" in body and e.message == "invalid model name":  # a FROM path that is not there
                raise ClientError(f"{e.message} (FROM {parsed.from_}: no such file or directory)", e.status) from None
            raise
    finally:
        progress.close()


def _read_modelfile(path: Path | None) -> tuple[str, Path]:
    """The Modelfile's text (UTF-8, or UTF-16 after its byte-order mark, as Ollama decodes it) and the folder
    a relative FROM is taken from; without -f and without ./Modelfile, Ollama's default `FROM .`."""
    if path is None:
        path = Path("Modelfile")
        if not path.exists():
            return "FROM .\n", Path.cwd()
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ClientError(f"specified Modelfile wasn't found: {e.strerror}: {path}") from None
    text = data.decode("utf-16") if data[:2] in (b"\xff\xfe", b"\xfe\xff") else data.decode(errors="replace")
    return text, path.resolve().parent


def _is_gguf(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"GGUF"


def _model_files(directory: Path) -> list[Path]:
    """Every file of an MLX model directory but hidden ones; in a folder of GGUFs (no config.json), only the
    `.gguf` files, as `ollama create` picks them. A folder with neither weights is refused as Ollama does."""
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    files = [p for p in files if not any(part.startswith(".") for part in p.relative_to(directory).parts)]
    if not any(p.suffix in (".safetensors", ".gguf") for p in files):
        raise ClientError(f"no Modelfile or safetensors files found in {directory}")  # Ollama's text, and where
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
