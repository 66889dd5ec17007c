"""Reading the `.http` recordings of real Ollama in compat-fixtures/ (request, status, headers, body)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "compat-fixtures" / "ollama-0.24.0"


@dataclass
class Recording:
    name: str
    method: str
    path: str
    body: bytes | None
    status: int
    headers: dict[str, str]
    response: bytes


def load(name: str) -> Recording:
    path = next(FIXTURES.glob(f"{name}*.http"))
    text = path.read_bytes()
    head, _, rest = text.partition(b"### RESPONSE:\n")
    lines = head.decode().splitlines()
    method, _, target = lines[0].removeprefix("### REQUEST: ").partition(" ")
    body = None
    for line in lines[1:]:
        if line.startswith("### BODY: "):
            body = line.removeprefix("### BODY: ").encode()
    status_line, _, rest = rest.partition(b"\r\n")
    header_block, _, response = rest.partition(b"\r\n\r\n")
    headers = {}
    for line in header_block.decode().split("\r\n"):
        key, _, value = line.partition(": ")
        headers[key.lower()] = value
    return Recording(path.stem, method, target.strip(), body, int(status_line.split()[1]), headers, response)


def all_names() -> list[str]:
    return sorted(p.stem for p in FIXTURES.glob("*.http"))
