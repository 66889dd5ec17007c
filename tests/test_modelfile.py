"""Modelfiles as Ollama v0.24.0's parser reads them (registry/modelfile.py), and `mlx-shim show X --modelfile`
read back by `mlx-shim create` to the same model, for a model from a local MLX folder and for a child FROM a
name with every kind of value (imported GGUFs with RENDERER/PARSER: tests/test_gguf_create.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from registry.modelfile import Command, ModelfileError, parse_commands, parse_modelfile
from tests.cli_inprocess import call
from tests.conftest import Server


def test_values_quoted_over_lines_without_escapes() -> None:
    text = (
        '\ufeff# a comment\n  # an indented comment\nfrom ./m\nSYSTEM "{{ .System }}</s>\nsecond line"\n'
        'TEMPLATE """say "hi"\n"""\nsystem \\n stays\nPARAMETER stop "<|end|>"\nPaRaMeTeR stop </s>\n'
        "MESSAGE user hi # not a comment\nLICENSE  padded  \r\nREQUIRES 0.14.0\nRENDERER qwen3\nPARSER qwen3\n"
    )
    assert parse_commands(text) == [
        Command("model", "./m"),
        Command("system", "{{ .System }}</s>\nsecond line"),
        Command("template", 'say "hi"\n'),
        Command("system", "\\n stays"),
        Command("stop", "<|end|>"),
        Command("stop", "</s>"),
        Command("message", "user: hi # not a comment"),
        Command("license", "padded"),
        Command("requires", "0.14.0"),
        Command("renderer", "qwen3"),
        Command("parser", "qwen3"),
    ]
    modelfile = parse_modelfile(text)
    assert (modelfile.system, modelfile.requires, modelfile.renderer) == ("\\n stays", "0.14.0", "qwen3")
    assert modelfile.parameters == {"stop": ["<|end|>", "</s>"]}
    assert modelfile.messages == [{"role": "user", "content": "hi # not a comment"}]
    deprecated = parse_modelfile("FROM x\nPARAMETER mirostat 1\n")
    assert (deprecated.parameters, deprecated.warnings) == ({}, ["warning: parameter mirostat is deprecated"])


COMMAND_LIST = '"from", "license", "template", "system", "adapter", "draft", "renderer", "parser", "parameter", ' + (
    '"message", or "requires"'
)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("SYSTEM hi\n", "no FROM line"),
        ("FROM x\nINSTRUCTION y\n", f"(line 2): command must be one of {COMMAND_LIST}"),
        ("FROM x\n\nSYS-TEM y\n", f"(line 3): command must be one of {COMMAND_LIST}"),
        ("FROM x\nMESSAGE User hi\n", '(line 2): message role must be one of "system", "user", or "assistant"'),
        ("FROM x\nPARAMETER top-k 1\n", "unexpected EOF: top"),
        ('FROM x\nSYSTEM "open\n', "unexpected EOF"),
        ("FROM x\nSYSTEM", "unexpected EOF"),
        ("FROM x\nREQUIRES latest\n", "requires must be a valid semver (e.g. 0.14.0)"),
        ("FROM x\nDRAFT ./small\n", "DRAFT is not supported: mlx-shim has no draft models (speculative decoding)"),
        ("FROM x\nFROM ./projector\n", "mlx-shim takes one FROM per Modelfile"),
        ("FROM x\nPARAMETER num_ctx lots\n", "invalid int value [lots]"),
    ],
)
def test_errors_are_ollamas(text: str, error: str) -> None:
    with pytest.raises(ModelfileError if "invalid int" not in error else ValueError) as raised:
        parse_modelfile(text)
    assert str(raised.value).startswith(error)


@pytest.mark.parametrize(
    "value", ["plain", " edge", "two\nlines", 'a "quoted"\nline', 'say "hi"', "tab\tinside", "# hash"],
)  # fmt: skip
def test_quote_reads_back(value: str) -> None:
    for command in (Command("system", value), Command("message", f"assistant: {value}")):
        written = f"FROM x\n{command}\n"
        assert parse_commands(written)[1] == command, written


def show(server: Server, name: str) -> dict[str, Any]:
    return httpx.post(f"{server.url}/api/show", json={"model": name}).json()


def assert_round_trips(server: Server, name: str, folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`show NAME --modelfile > M; create NAME-again -f M` gives a model that shows the same (the FROM folder
    may differ where the first was converted from a GGUF; the same files always assemble into one folder)."""
    status, written, error = call(capsys, "show", name, "--modelfile")
    assert status == 0, error
    modelfile = folder / f"{name.replace(':', '-')}.Modelfile"
    modelfile.write_text(written)
    again = f"{name.split(':')[0]}-again"
    status, _, error = call(capsys, "create", again, "-f", str(modelfile))
    assert status == 0, error
    before, after = show(server, name), show(server, again)
    for key in ("template", "system", "parameters", "license", "messages", "renderer", "parser", "capabilities"):
        assert after.get(key) == before.get(key), key
    assert after["details"] == before["details"]
    without_from = [line for line in before["modelfile"].splitlines()[4:] if not line.startswith("FROM ")]
    assert [line for line in after["modelfile"].splitlines()[4:] if not line.startswith("FROM ")] == without_from
    assert call(capsys, "rm", again)[0] == 0


CHILD = '''# every kind of value, as a person writes it
from tiny
system """Answer in "quotes",
  briefly. """
TEMPLATE "{{ if .System }}{{ .System }} {{ end }}{{ .Prompt }}
"
PARAMETER temperature 0.25
PARAMETER stop </s>
parameter stop "<|end|>"
PARAMETER num_predict 8
MESSAGE user Who are you?
MESSAGE assistant """A "tiny"
model."""
LICENSE """MIT
second line"""
LICENSE " Apache "
'''


def test_show_modelfile_round_trips_through_create(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", server.env["OLLAMA_HOST"])
    assert_round_trips(server, "tiny", tmp_path, capsys)  # a local MLX folder: TEMPLATE over lines, SYSTEM, ...
    (tmp_path / "Child").write_text(CHILD)
    status, _, error = call(capsys, "create", "child", "-f", str(tmp_path / "Child"))
    assert status == 0, error
    child = show(server, "child")
    assert child["system"] == 'Answer in "quotes",\n  briefly. ' and child["license"] == "MIT\nsecond line\n Apache "
    assert child["messages"][1] == {"role": "assistant", "content": 'A "tiny"\nmodel.'}
    assert 'stop                           "<|end|>"' in child["parameters"]
    assert_round_trips(server, "child", tmp_path, capsys)
    assert call(capsys, "rm", "child")[0] == 0
