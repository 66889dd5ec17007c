"""shim.gojson must reproduce Go encoding/json Decoder texts byte for byte: clients see them as Ollama's 400s.

Expected texts are derived from Go's scanner.go / stream.go / decode.go and were cross-checked against a
real Go build (json.NewDecoder(bytes.NewReader(body)).Decode(&v)).
"""

from __future__ import annotations

import base64
import json
import unicodedata

import pytest

from shim.gojson import (
    EmptyBody,
    GoJSONError,
    decode,
    quote_char,
    type_name,
    unmarshal_type_error,
    unmarshal_value_error,
)

SYNTAX_ERRORS: list[tuple[bytes, str]] = [
    # beginning of value
    (b"x", "invalid character 'x' looking for beginning of value"),
    (b"NaN", "invalid character 'N' looking for beginning of value"),
    (b"[Infinity]", "invalid character 'I' looking for beginning of value"),
    (b"+1", "invalid character '+' looking for beginning of value"),
    (b".5", "invalid character '.' looking for beginning of value"),
    (b"[1,]", "invalid character ']' looking for beginning of value"),
    (b'{"a":}', "invalid character '}' looking for beginning of value"),
    (b"'a'", "invalid character '\\'' looking for beginning of value"),
    (b"\\", "invalid character '\\\\' looking for beginning of value"),
    (b"\xef\xbb\xbf{}", "invalid character '\u00ef' looking for beginning of value"),  # UTF-8 BOM
    (b"\xc3\xa9", "invalid character '\u00c3' looking for beginning of value"),
    (b"\x80", "invalid character '\\u0080' looking for beginning of value"),
    (b"\xa0", "invalid character '\\u00a0' looking for beginning of value"),
    (b"\xad", "invalid character '\\u00ad' looking for beginning of value"),
    (b"\xff", "invalid character '\u00ff' looking for beginning of value"),
    (b"\x00", "invalid character '\\x00' looking for beginning of value"),
    (b"\x0b{}", "invalid character '\\v' looking for beginning of value"),  # \v and \f are not JSON space
    (b"[\x0c]", "invalid character '\\f' looking for beginning of value"),
    (b"[\x07]", "invalid character '\\a' looking for beginning of value"),
    (b"[\x08]", "invalid character '\\b' looking for beginning of value"),
    (b"[\x7f]", "invalid character '\\x7f' looking for beginning of value"),
    # objects
    (b'{"model"}', "invalid character '}' after object key"),
    (b'{"a" 1}', "invalid character '1' after object key"),
    (b'{"a"=1}', "invalid character '=' after object key"),
    (b'{"a":1 "b":2}', "invalid character '\"' after object key:value pair"),
    (b'{"a":1]', "invalid character ']' after object key:value pair"),
    (b'{"a":01}', "invalid character '1' after object key:value pair"),
    (b'{"a":1,}', "invalid character '}' looking for beginning of object key string"),
    (b"{,}", "invalid character ',' looking for beginning of object key string"),
    (b"{a:1}", "invalid character 'a' looking for beginning of object key string"),
    (b"{'a':1}", "invalid character '\\'' looking for beginning of object key string"),
    (b'{"a":1, 2}', "invalid character '2' looking for beginning of object key string"),
    # arrays
    (b"[1 2]", "invalid character '2' after array element"),
    (b"[1}", "invalid character '}' after array element"),
    (b"[01]", "invalid character '1' after array element"),
    (b'["a"\n"b"]', "invalid character '\"' after array element"),
    # literals
    (b"tx", "invalid character 'x' in literal true (expecting 'r')"),
    (b"trUe", "invalid character 'U' in literal true (expecting 'u')"),
    (b"trux", "invalid character 'x' in literal true (expecting 'e')"),
    (b"fx", "invalid character 'x' in literal false (expecting 'a')"),
    (b"fa1", "invalid character '1' in literal false (expecting 'l')"),
    (b"fal e", "invalid character ' ' in literal false (expecting 's')"),
    (b"fals0", "invalid character '0' in literal false (expecting 'e')"),
    (b"nil", "invalid character 'i' in literal null (expecting 'u')"),
    (b"nUll", "invalid character 'U' in literal null (expecting 'u')"),
    (b"nuLl", "invalid character 'L' in literal null (expecting 'l')"),
    (b"nulL", "invalid character 'L' in literal null (expecting 'l')"),
    (b'{"stream":True}', "invalid character 'T' looking for beginning of value"),
    # strings
    (b'"a\nb"', "invalid character '\\n' in string literal"),
    (b'{"prompt":"a\tb"}', "invalid character '\\t' in string literal"),
    (b'"\r"', "invalid character '\\r' in string literal"),
    (b'"\x00"', "invalid character '\\x00' in string literal"),
    (b'"\x1f"', "invalid character '\\x1f' in string literal"),
    (b'"\\q"', "invalid character 'q' in string escape code"),
    (b'"\\U0041"', "invalid character 'U' in string escape code"),
    (b'"\\x41"', "invalid character 'x' in string escape code"),
    (b'"\\\'"', "invalid character '\\'' in string escape code"),
    (b'"\\\n"', "invalid character '\\n' in string escape code"),
    (b'"\\ug"', "invalid character 'g' in \\u hexadecimal character escape"),
    (b'"\\u1x"', "invalid character 'x' in \\u hexadecimal character escape"),
    (b'"\\u12 4"', "invalid character ' ' in \\u hexadecimal character escape"),
    (b'"\\u123"', "invalid character '\"' in \\u hexadecimal character escape"),
    # numbers
    (b"-x", "invalid character 'x' in numeric literal"),
    (b"-.5", "invalid character '.' in numeric literal"),
    (b"[-]", "invalid character ']' in numeric literal"),
    (b"[-Infinity]", "invalid character 'I' in numeric literal"),
    (b"1.x", "invalid character 'x' after decimal point in numeric literal"),
    (b"[1.]", "invalid character ']' after decimal point in numeric literal"),
    (b"1.e5", "invalid character 'e' after decimal point in numeric literal"),
    (b"1ex", "invalid character 'x' in exponent of numeric literal"),
    (b"1e+]", "invalid character ']' in exponent of numeric literal"),
    (b"[1E-e]", "invalid character 'e' in exponent of numeric literal"),
    (b"[0x10]", "invalid character 'x' after array element"),
    (b'{"n":1.5.3}', "invalid character '.' after object key:value pair"),
    # depth: Go's maxNestingDepth is 10000
    (b"[" * 10001, "invalid character '[' exceeded max depth"),
    (b'{"a":' * 10000 + b"{", "invalid character '{' exceeded max depth"),
]

UNEXPECTED_EOF: list[bytes] = [
    b'{"model":"tiny",',  # recorded from Ollama v0.24.0
    b'{"model":',  # recorded from Ollama v0.24.0
    b"{",
    b"[",
    b"  [ ",
    b'{"a"',
    b'{"a" ',
    b'{"a":1',
    b'{"a":1,"b"',
    b'"abc',
    b'"\\',
    b'"\\u12',
    b"tru",
    b"f",
    b"nul",
    b"-",
    b"1.",
    b"1e",
    b"1e+",
    b"[1,",
    b'{"x":[1,{"y":"z"}',
    b"[" * 10000,  # deep but within the limit: only truncated
    b'"a\xff',
]


@pytest.mark.parametrize(("body", "message"), SYNTAX_ERRORS, ids=lambda v: repr(v)[:40])
def test_syntax_error_texts(body: bytes, message: str) -> None:
    with pytest.raises(GoJSONError) as info:
        decode(body)
    assert info.value.message == message
    assert str(info.value) == message


@pytest.mark.parametrize("body", UNEXPECTED_EOF, ids=lambda v: repr(v)[:40])
def test_truncated_values_are_unexpected_eof(body: bytes) -> None:
    with pytest.raises(GoJSONError) as info:
        decode(body)
    assert info.value.message == "unexpected EOF"
    assert not isinstance(info.value, EmptyBody)


@pytest.mark.parametrize("body", [b"", b" ", b"\n", b" \t\r\n  "])
def test_empty_body_is_io_eof(body: bytes) -> None:
    with pytest.raises(EmptyBody) as info:
        decode(body)
    assert info.value.message == "EOF"
    assert isinstance(info.value, GoJSONError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("body", [b"\x0b", b"\x0c", b"\xc2\xa0"])
def test_non_json_whitespace_is_not_empty(body: bytes) -> None:
    with pytest.raises(GoJSONError) as info:
        decode(body)
    assert not isinstance(info.value, EmptyBody)


# Decode reads exactly one value; whatever follows it (even garbage) is never looked at.
TRAILING: list[tuple[bytes, object]] = [
    (b'{"a":1}{"b":2}', {"a": 1}),
    (b'{"a":1} garbage', {"a": 1}),
    (b'{"a":1}\n', {"a": 1}),
    (b'{"a":1}}', {"a": 1}),
    (b"[1]]", [1]),
    (b"[1],", [1]),
    (b"123abc", 123),
    (b"01", 0),  # Unmarshal would fail; the Decoder stops after the 0
    (b"-01", 0),
    (b"0x1F", 0),
    (b"1.5.3", 1.5),
    (b"1e5e5", 100000.0),
    (b"truex", True),
    (b"nullnull", None),
    (b'"s"x', "s"),
    (b'  "s" "t"', "s"),
    (b'{"a":1}\xff\xfe', {"a": 1}),
    (b'{"a":"\xff"} trailing', {"a": "\ufffd"}),
    (b'{"a":"\\ud800"} trailing', {"a": "\ufffd"}),
]


@pytest.mark.parametrize(("body", "expected"), TRAILING, ids=lambda v: repr(v)[:40])
def test_trailing_data_is_ignored(body: bytes, expected: object) -> None:
    assert decode(body) == expected


VALID: list[bytes] = [
    b'{"model":"tiny","prompt":"hi","stream":false}',
    b' \n\t{"model" : "tiny" ,\r\n "options" : {"temperature" : 0.5, "seed" : -3}} \n',
    b'{"messages":[{"role":"user","content":"h\\u00e9llo \\ud83d\\ude00 \xe2\x82\xac"}],"images":null}',
    b"[1, -0, 2.5, -1.25e-3, 1E+2, 0.0, 123456789012345678901234567890, true, false, null, [], {}]",
    b'"a\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u0000\x7f"',
    b'{"a":1,"a":2,"b":{"c":[{"d":[]}]}}',
    b'{"z":1,"a":2,"m":3}',
    b"0",
    b"-12",
    b"true",
    b"null",
    b"[" * 500 + b"]" * 500,
]


@pytest.mark.parametrize("body", VALID, ids=lambda v: repr(v)[:40])
def test_valid_bodies_decode_like_json_loads(body: bytes) -> None:
    value = decode(body)
    assert value == json.loads(body)
    if isinstance(value, dict):
        assert list(value) == list(json.loads(body))  # key order preserved


def test_big_integers_keep_their_exact_value() -> None:
    assert decode(b'{"n":123456789012345678901234567890}') == {"n": 123456789012345678901234567890}


# Go replaces each invalid UTF-8 byte (utf8.DecodeRune -> RuneError, 1) and each unpaired surrogate escape.
STRINGS: list[tuple[bytes, str]] = [
    (b'"a\xffb"', "a\ufffdb"),
    (b'"\xe2\x82"', "\ufffd\ufffd"),  # truncated 3-byte sequence: two bytes, two U+FFFD
    (b'"\xe2\x82x"', "\ufffd\ufffdx"),
    (b'"\xf0\x9f\x98x"', "\ufffd\ufffd\ufffdx"),
    (b'"\xed\xa0\x80"', "\ufffd\ufffd\ufffd"),  # UTF-8-encoded surrogate
    (b'"\xc0\x80"', "\ufffd\ufffd"),  # overlong NUL
    (b'"\xe2\x82\xac\xf0\x9f\x98\x80"', "\u20ac\U0001f600"),
    (b'"\xef\xbf\xbd"', "\ufffd"),
    (b'"\\ud800"', "\ufffd"),
    (b'"\\udc00"', "\ufffd"),
    (b'"\\ud83d\\ude00"', "\U0001f600"),
    (b'"\\uD83D\\uDE00"', "\U0001f600"),
    (b'"\\ude00\\ud83d"', "\ufffd\ufffd"),
    (b'"\\ud800\\u0041"', "\ufffdA"),
    (b'"\\ud800x"', "\ufffdx"),
    (b'"\\ud800\\ud800\\udc00"', "\ufffd\U00010000"),
    (b'"\\\\ud800"', "\\ud800"),  # an escaped backslash, not an escape
]


@pytest.mark.parametrize(("body", "expected"), STRINGS, ids=lambda v: repr(v)[:40])
def test_string_repair_matches_go(body: bytes, expected: str) -> None:
    assert decode(body) == expected
    assert decode(b'{"k":[' + body + b"]}") == {"k": [expected]}
    assert decode(b"{" + body + b":1}") == {expected: 1}


def test_large_string_with_trailing_data() -> None:
    image = base64.b64encode(bytes(range(256)) * 4096).decode()
    body = json.dumps({"model": "m", "images": [image]}).encode()
    assert decode(body + b"\nextra")["images"] == [image]
    with pytest.raises(GoJSONError) as info:
        decode(body[:-3])
    assert info.value.message == "unexpected EOF"


def _strconv_quote_rune(c: int) -> str:
    """Independent model of strconv.Quote for a rune <= U+00FF (IsPrint: categories L/M/N/P/S, ' ')."""
    named = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v"}
    named |= {0x5C: "\\\\", 0x22: '\\"'}
    if c in named:
        return named[c]
    if c == 0x20 or unicodedata.category(chr(c))[0] in "LMNPS":
        return chr(c)
    return f"\\x{c:02x}" if c < 0x20 or c == 0x7F else f"\\u{c:04x}"


@pytest.mark.parametrize("c", range(256))
def test_quote_char_matches_strconv(c: int) -> None:
    special = {0x27: "'\\''", 0x22: "'\"'"}  # quoteChar's own special cases
    assert quote_char(c) == special.get(c, f"'{_strconv_quote_rune(c)}'")


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("x", "string"),
        (1, "number"),
        (1.5, "number"),
        (True, "bool"),
        (False, "bool"),
        ([], "array"),
        ({}, "object"),
        (None, "null"),
    ],
)
def test_type_name(value: object, name: str) -> None:
    assert type_name(value) == name


def test_unmarshal_type_error_texts() -> None:
    # Recorded from Ollama v0.24.0: {"model":"tiny","prompt":123} into GenerateRequest.
    body = decode(b'{"model":"tiny","prompt":123}')
    assert unmarshal_type_error(body["prompt"], "GenerateRequest.prompt", "string") == (
        "json: cannot unmarshal number into Go struct field GenerateRequest.prompt of type string"
    )
    assert unmarshal_type_error(True, "GenerateRequest.images", "[]api.ImageData") == (
        "json: cannot unmarshal bool into Go struct field GenerateRequest.images of type []api.ImageData"
    )
    # Go >= 1.20: innermost struct name, then the JSON-name path from the root.
    assert unmarshal_type_error(["a"], "Message.messages.content", "string") == (
        "json: cannot unmarshal array into Go struct field Message.messages.content of type string"
    )
    assert unmarshal_type_error("x", "GenerateRequest.options", "map[string]interface {}") == (
        "json: cannot unmarshal string into Go struct field GenerateRequest.options of type map[string]interface {}"
    )
    # Integer/float range failures carry the literal.
    assert unmarshal_type_error(1.5, "Options.num_ctx", "int", literal="1.5") == (
        "json: cannot unmarshal number 1.5 into Go struct field Options.num_ctx of type int"
    )


def test_unmarshal_value_error_texts() -> None:
    assert unmarshal_value_error(decode(b"[1]"), "api.GenerateRequest") == (
        "json: cannot unmarshal array into Go value of type api.GenerateRequest"
    )
    assert unmarshal_value_error("s", "api.ChatRequest") == (
        "json: cannot unmarshal string into Go value of type api.ChatRequest"
    )
    assert unmarshal_value_error(float("inf"), "float64", literal="1e400") == (
        "json: cannot unmarshal number 1e400 into Go value of type float64"
    )


def test_type_name_rejects_non_json() -> None:
    with pytest.raises(TypeError):
        type_name(object())
