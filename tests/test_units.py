"""Pure-Python pieces, table-driven: names, durations, OLLAMA_HOST, Modelfiles, options, stop strings,
thinking split, incremental detokenization, and Go-style JSON bytes."""

from __future__ import annotations

import math
import re

import pytest

from registry.model_dir import human_number
from registry.modelfile import ModelfileError, parse_modelfile
from registry.names import InvalidName, ModelName
from shim.config import parse_ollama_host
from shim.durations import DurationError, keep_alive_seconds, parse_go_duration
from shim.engine.detokenizer import IncrementalDetokenizer
from shim.engine.stops import StopMatcher
from shim.engine.thinking import ThinkingSplitter
from shim.engine.types import Piece
from shim.jsonbytes import go_json
from shim.options import OptionError, resolve_options
from shim.timefmt import utc_from_ns


@pytest.mark.parametrize(
    ("text", "full", "display"),
    [
        ("tiny", "registry.ollama.ai/library/tiny:latest", "tiny:latest"),
        ("llama3.2:1b", "registry.ollama.ai/library/llama3.2:1b", "llama3.2:1b"),
        ("user/model:tag", "registry.ollama.ai/user/model:tag", "user/model:tag"),
        ("hf.co/org/repo:Q4", "hf.co/org/repo:Q4", "hf.co/org/repo:Q4"),
        ("localhost:5000/ns/m", "localhost:5000/ns/m:latest", "localhost:5000/ns/m:latest"),
        ("https://host.example/ns/m:t", "host.example/ns/m:t", "host.example/ns/m:t"),
    ],
)
def test_model_names(text: str, full: str, display: str) -> None:
    name = ModelName.parse(text)
    assert (name.full, name.display) == (full, display)


@pytest.mark.parametrize("text", ["", "bad name!", "a/b/c/d", "m:", ":tag", "-leading", "ns.dot/m", "a" * 81])
def test_invalid_model_names(text: str) -> None:
    with pytest.raises(InvalidName):
        ModelName.parse(text)


def test_names_compare_case_insensitively() -> None:
    assert ModelName.parse("TINY:LATEST").key() == ModelName.parse("tiny").key()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5m", 300), ("1h30m", 5400), ("0", 0), (".5s", 0.5), ("1.5h", 5400), ("300ms", 0.3), ("2us", 2e-6),
     ("-1m", -60), ("1h2m3s4ms", 3723.004)],
)  # fmt: skip
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "error"),
    [("abc", 'time: invalid duration "abc"'), ("10", 'time: missing unit in duration "10"'),
     ("5x", 'time: unknown unit "x" in duration "5x"'), ("", 'time: invalid duration ""'),
     ("-", 'time: invalid duration "-"')],
)  # fmt: skip
def test_go_duration_errors(text: str, error: str) -> None:
    with pytest.raises(DurationError) as err:
        parse_go_duration(text)
    assert str(err.value) == error


def test_keep_alive_values() -> None:
    assert keep_alive_seconds(0.5) == 0.5
    assert keep_alive_seconds(-1) == math.inf
    assert keep_alive_seconds("-5m") == math.inf
    assert keep_alive_seconds("10m") == 600
    with pytest.raises(DurationError, match=r"Unsupported type: '\[\]interface \{\}'"):
        keep_alive_seconds([1])


@pytest.mark.parametrize(
    ("raw", "scheme", "host", "port"),
    [
        (None, "http", "127.0.0.1", 11434),
        ("", "http", "127.0.0.1", 11434),
        ("0.0.0.0", "http", "0.0.0.0", 11434),
        ("127.0.0.1:8080", "http", "127.0.0.1", 8080),
        (":9000", "http", "", 9000),
        ("http://example.com", "http", "example.com", 80),
        ("https://example.com", "https", "example.com", 443),
        ("http://10.0.0.1:1234/path", "http", "10.0.0.1", 1234),
        ("[::1]:11435", "http", "::1", 11435),
        ("::1", "http", "::1", 11434),
        ("localhost:99999", "http", "localhost", 11434),
    ],
)
def test_ollama_host_forms(raw: str | None, scheme: str, host: str, port: int) -> None:
    bind = parse_ollama_host(raw)
    assert (bind.scheme, bind.host, bind.port) == (scheme, host, port)


def test_loopback_detection() -> None:
    assert parse_ollama_host("127.0.0.1:1").is_loopback
    assert parse_ollama_host("[::1]:1").is_loopback
    assert not parse_ollama_host("0.0.0.0:1").is_loopback
    assert parse_ollama_host(":1").hypercorn == "0.0.0.0:1"
    assert parse_ollama_host("[::1]:5").hypercorn == "[::1]:5"


def test_modelfile_parsing() -> None:
    mf = parse_modelfile(
        '# comment\nFROM ./model\nSYSTEM """Be\nbrief."""\nTEMPLATE "{{ .Prompt }}"\n'
        'PARAMETER temperature 0.5\nPARAMETER stop </s>\nPARAMETER stop "<|end|>"\nparameter num_ctx 512\n'
    )
    assert mf.from_ == "./model"
    assert mf.system == "Be\nbrief."
    assert mf.template == "{{ .Prompt }}"
    assert mf.parameters == {"temperature": 0.5, "stop": ["</s>", "<|end|>"], "num_ctx": 512}


@pytest.mark.parametrize(
    ("text", "message"),
    [("SYSTEM hi\n", "no FROM line"), ("FROM x\nADAPTER y\n", "ADAPTER is not supported"),
     ("FROM x\nPARAMETER num_ctx lots\n", "invalid int value [lots]"),
     ("FROM x\nPARAMETER bogus 1\n", "unknown parameter 'bogus'"), ('FROM x\nSYSTEM """open\n', "unexpected EOF")],
)  # fmt: skip
def test_modelfile_errors(text: str, message: str) -> None:
    with pytest.raises((ModelfileError, ValueError), match=re.escape(message)):
        parse_modelfile(text)


def test_option_precedence_and_types() -> None:
    opts = resolve_options(4096, {"temperature": 0.2, "stop": ["</s>"]}, {"temperature": 0.9, "top_k": 5.7,
                                                                             "mirostat": 1, "seed": None})  # fmt: skip
    assert (opts.temperature, opts.top_k, opts.stop, opts.num_ctx, opts.seed) == (0.9, 5, ("</s>",), 4096, -1)
    with pytest.raises(OptionError, match='option "use_mmap" must be of type boolean'):
        resolve_options(4096, {}, {"use_mmap": 1})
    with pytest.raises(OptionError, match='option "seed" must be of type integer'):
        resolve_options(4096, {}, {"seed": True})


def test_stop_matcher_holds_back_partial_matches() -> None:
    m = StopMatcher(("STOP",))
    assert m.feed("hello S") == ("hello ", False)
    assert m.feed("T") == ("", False)
    assert m.feed("x") == ("STx", False)
    assert m.feed(" and ST") == (" and ", False)
    assert m.feed("OP more") == ("", True)
    m = StopMatcher(("ab", "b"))
    assert m.feed("xab") == ("x", True)
    assert StopMatcher(()).feed("a") == ("a", False)
    tail = StopMatcher(("END",))
    assert tail.feed("fin E") == ("fin ", False) and tail.flush() == "E"


def test_thinking_splitter() -> None:
    s = ThinkingSplitter(enabled=True)
    assert s.text("\n") is None
    assert s.open() is None
    assert s.text("\n") is None
    assert s.text(" plan") == Piece(thinking="plan")
    assert s.text(" more\n") == Piece(thinking=" more")
    assert s.text("\n") is None
    assert s.close() is None
    assert s.text("\n\n") is None
    assert s.text("Answer") == Piece(content="Answer")
    assert s.open() == Piece(content="<think>")
    direct = ThinkingSplitter(enabled=True)
    assert direct.text("Hi") == Piece(content="Hi")
    assert ThinkingSplitter(enabled=True, starts_open=True).text("x") == Piece(thinking="x")
    assert ThinkingSplitter(enabled=False).text("x") == Piece(content="x")


def test_incremental_detokenizer_keeps_leading_space_and_utf8() -> None:
    pieces = {1: b"The", 2: b" sky", 3: b"\xe2\x82", 4: b"\xac", 5: b"!"}

    def decode(ids: list[int]) -> str:
        return b"".join(pieces[i] for i in ids).decode("utf-8", "replace")

    detok = IncrementalDetokenizer(decode, lead_in=[1])
    assert [detok.add(t) for t in (2, 3, 4, 5)] == [" sky", "", "€", "!"]
    assert detok.flush() == ""
    partial = IncrementalDetokenizer(decode)
    assert partial.add(3) == "" and partial.flush() == "\ufffd"


def test_go_json_escapes_like_encoding_json() -> None:
    assert go_json({"a": "<|im_end|> & \u2028"}) == b'{"a":"\\u003c|im_end|\\u003e \\u0026 \\u2028"}'


def test_times_and_numbers() -> None:
    assert utc_from_ns(1_764_000_000_123_456_000) == "2025-11-24T16:00:00.123456Z"
    assert utc_from_ns(1_764_000_000_000_000_000) == "2025-11-24T16:00:00Z"
    assert [human_number(n) for n in (128704, 494_032_768, 7_615_616_512, 8_000_000_000, 999)] == [
        "129K", "494.03M", "7.6B", "8B", "999"]  # fmt: skip
