"""The bad-input corpus: hostile and malformed requests on every endpoint, each answered as Ollama v0.24.0 answers it
(status, error layout and exact text), after which the server still answers.

Expected texts come from Ollama's source: gin's ShouldBindJSON returns Go's encoding/json errors (scanner.go's
syntax errors, decode.go's UnmarshalTypeError with Struct = the innermost struct and Field = the JSON path);
`api.Duration`'s UnmarshalJSON and time.ParseDuration; the handlers' own texts in server/routes.go; the /v1
middleware's NewError (middleware/openai.go); and /work/shared/reference/ollama-api.md's checklist.

Ollama itself answers 5xx for these (and nothing else here answers 5xx), so they are listed, not bugs:
  * an option of the wrong type (`"temperature": "hot"`): api.Options.FromMap fails while scheduling the runner, and
    handleScheduleError's default branch answers 500;
  * a `format` that is neither "json" nor an object (`123`, `[1]`, a 30-digit integer): the runner's
    `invalid format` error, 500;
  * a model whose files cannot be read (/api/show, /api/chat): Ollama's GetModel error is a 500 with its cause.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server

BODY_TYPES = {  # the Go type each route binds its body to
    ("POST", "/api/generate"): "api.GenerateRequest",
    ("POST", "/api/chat"): "api.ChatRequest",
    ("POST", "/api/embed"): "api.EmbedRequest",
    ("POST", "/api/embeddings"): "api.EmbeddingRequest",
    ("POST", "/api/show"): "api.ShowRequest",
    ("POST", "/api/copy"): "api.CopyRequest",
    ("DELETE", "/api/delete"): "api.DeleteRequest",
    ("POST", "/api/pull"): "api.PullRequest",
    ("POST", "/api/push"): "api.PushRequest",
    ("POST", "/api/create"): "api.CreateRequest",
    ("POST", "/api/import"): "api.ImportRequest",  # mlx-shim's own route, bound by the same rules
    ("POST", "/v1/chat/completions"): "openai.ChatCompletionRequest",
    ("POST", "/v1/completions"): "openai.CompletionRequest",
    ("POST", "/v1/embeddings"): "openai.EmbedRequest",
    ("POST", "/v1/responses"): "openai.ResponsesRequest",
    ("POST", "/v1/messages"): "anthropic.MessagesRequest",
}
# Go's Decoder: the first syntax error, or the body's JSON type against the request struct.
SYNTAX = [
    (b"{", "unexpected EOF"),
    (b'{"model":', "unexpected EOF"),
    (b'{"model":"tiny"', "unexpected EOF"),
    (b"x", "invalid character 'x' looking for beginning of value"),
    (b"{x}", "invalid character 'x' looking for beginning of object key string"),
    (b'{"model":"tiny",}', "invalid character '}' looking for beginning of object key string"),
    (b'{"model" "tiny"}', "invalid character '\"' after object key"),
    (b'{"model":"tiny" "x"}', "invalid character '\"' after object key:value pair"),
    (b"[1,]", "invalid character ']' looking for beginning of value"),
    (b'{"model":tru}', "invalid character '}' in literal true (expecting 'e')"),
    (b'{"model":01}', "invalid character '1' after object key:value pair"),
    (b'{"model":NaN}', "invalid character 'N' looking for beginning of value"),
    (b"\xff", "invalid character 'ÿ' looking for beginning of value"),
    (b"[" * 10001 + b"]" * 10001, "invalid character '[' exceeded max depth"),
]
WRONG_BODY = [(b"[1]", "array"), (b'"s"', "string"), (b"7", "number"), (b"true", "bool")]
WRONG_MODEL = [(b'{"model":1}', "number"), (b'{"model":[1]}', "array"), (b'{"model":{}}', "object")]


def _framing_cases() -> Iterator[Any]:
    for (method, path), go_type in BODY_TYPES.items():
        v1 = path.startswith("/v1")
        for body in (b"", b"  \n"):  # Ollama's handlers say "missing request body"; the /v1 middleware passes io.EOF
            yield pytest.param(method, path, body, 400, "EOF" if v1 else "missing request body", id=f"{path}-empty")
        for i, (body, text) in enumerate(SYNTAX):
            yield pytest.param(method, path, body, 400, text, id=f"{path}-syntax{i}")
        for body, kind in WRONG_BODY:
            text = f"json: cannot unmarshal {kind} into Go value of type {go_type}"
            yield pytest.param(method, path, body, 400, text, id=f"{path}-body-{kind}")
        if path in ("/api/copy", "/api/import"):
            continue  # no `model` field
        struct_name = go_type.split(".")[1]
        for body, kind in WRONG_MODEL:
            text = f"json: cannot unmarshal {kind} into Go struct field {struct_name}.model of type string"
            yield pytest.param(method, path, body, 400, text, id=f"{path}-model-{kind}")


def _j(value: Any) -> bytes:
    return json.dumps(value).encode()


GEN = {"model": "tiny", "prompt": "hi", "stream": False}
CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "stream": False}
V1 = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}
OVERFLOW = "json: cannot unmarshal number {literal} into Go struct field {field} of type {go_type}"


def _history(*tool_calls: Any) -> list[dict[str, Any]]:
    return [{"role": "assistant", "content": "", "tool_calls": list(tool_calls)}, {"role": "user", "content": "hi"}]


def _semantic_cases() -> Iterator[Any]:
    gen = ("POST", "/api/generate")
    chat = ("POST", "/api/chat")
    v1 = ("POST", "/v1/chat/completions")
    for key in ("num_predict", "num_ctx", "temperature", "seed", "top_k"):
        for literal in ("1e400", "-1e400"):
            body = b'{"model":"tiny","prompt":"hi","options":{"%s":%s}}' % (key.encode(), literal.encode())
            text = OVERFLOW.format(literal=literal, field="GenerateRequest.options", go_type="float64")
            yield pytest.param(*gen, body, 400, text, id=f"generate-{key}-{literal}")
            body = b'{"model":"tiny","messages":[],"options":{"%s":%s}}' % (key.encode(), literal.encode())
            text = OVERFLOW.format(literal=literal, field="ChatRequest.options", go_type="float64")
            yield pytest.param(*chat, body, 400, text, id=f"chat-{key}-{literal}")
    for key, go_type in (("max_tokens", "int"), ("seed", "int"), ("temperature", "float64"), ("top_p", "float64")):
        body = b'{"model":"tiny","messages":[],"%s":1e400}' % key.encode()
        text = OVERFLOW.format(literal="1e400", field=f"ChatCompletionRequest.{key}", go_type=go_type)
        yield pytest.param(*v1, body, 400, text, id=f"v1-{key}-1e400")
    for key in ("max_tokens", "seed"):
        text = OVERFLOW.format(literal=str(2**64), field=f"ChatCompletionRequest.{key}", go_type="int")
        yield pytest.param(*v1, _j({**V1, key: 2**64}), 400, text, id=f"v1-{key}-2**64")
    text = OVERFLOW.format(literal="9" * 400, field="GenerateRequest.options", go_type="float64")
    yield pytest.param(*gen, _j({**GEN, "options": {"seed": int("9" * 400)}}), 400, text, id="generate-seed-400-digits")
    text = OVERFLOW.format(literal="9" * 400, field="GenerateRequest.context", go_type="int")
    yield pytest.param(*gen, _j({**GEN, "context": [int("9" * 400)]}), 400, text, id="generate-context-400-digits")
    text = OVERFLOW.format(literal=str(2**63), field="GenerateRequest.context", go_type="int")
    yield pytest.param(*gen, _j({**GEN, "context": [2**63]}), 400, text, id="generate-context-2**63")

    # keep_alive: api.Duration (numbers are seconds; strings time.ParseDuration, which refuses an int64 overflow)
    for value, text in (
        ("abc", 'time: invalid duration "abc"'),
        ("10", 'time: missing unit in duration "10"'),
        ("5x", 'time: unknown unit "x" in duration "5x"'),
        ("100000000h", 'time: invalid duration "100000000h"'),
        ("9999999999999999999ns", 'time: invalid duration "9999999999999999999ns"'),
        ("", 'time: invalid duration ""'),
        (True, "Unsupported type: 'bool'"),
        (
            10**400,
            "json: cannot unmarshal number 1" + "0" * 400 + " into Go struct field {struct}.keep_alive of type float64",
        ),  # fmt: skip
        ([1], "Unsupported type: '[]interface {}'"),
    ):
        for route, base, go_struct in ((gen, GEN, "GenerateRequest"), (chat, CHAT, "ChatRequest")):
            body = _j({**base, "keep_alive": value})
            case = f"{route[1]}-keep_alive-{str(value)[:20]}"
            yield pytest.param(*route, body, 400, text.replace("{struct}", go_struct), id=case)

    think = 'invalid think value: "extreme" (must be "high", "medium", "low", "max", true, or false)'
    for route, base, go_struct in ((gen, GEN, "GenerateRequest"), (chat, CHAT, "ChatRequest")):
        name = route[1].rsplit("/", 1)[1]
        cases: list[tuple[dict[str, Any], int, str]] = [
            ({"think": "extreme"}, 400, think),
            ({"think": 1}, 400, 'think must be a boolean or string ("high", "medium", "low", "max", true, or false)'),
            ({"top_logprobs": 21}, 400, "top_logprobs must be between 0 and 20"),
            ({"top_logprobs": -1}, 400, "top_logprobs must be between 0 and 20"),
            ({"model": "bad name!"}, 400, "invalid model name"),
            ({"model": "nope"}, 404, "model 'nope' not found"),
            (
                {"options": "x"},
                400,
                f"json: cannot unmarshal string into Go struct field {go_struct}.options of type "
                "map[string]interface {}",
            ),  # fmt: skip
            (
                {"options": [1]},
                400,
                f"json: cannot unmarshal array into Go struct field {go_struct}.options of type "
                "map[string]interface {}",
            ),  # fmt: skip
            (
                {"stream": "yes"},
                400,
                f"json: cannot unmarshal string into Go struct field {go_struct}.stream of type bool",
            ),
            (
                {"raw": 1} if route == gen else {"tools": "x"},
                400,
                "json: cannot unmarshal "
                + (
                    "number into Go struct field GenerateRequest.raw of type bool"
                    if route == gen
                    else "string into Go struct field ChatRequest.tools of type api.Tools"
                ),
            ),  # fmt: skip
            ({"options": {"temperature": "hot"}}, 500, 'option "temperature" must be of type float32'),
            ({"options": {"num_ctx": "big"}}, 500, 'option "num_ctx" must be of type integer'),
            ({"options": {"stop": "x"}}, 500, 'option "stop" must be of type array'),
            ({"options": {"stop": [1]}}, 500, 'option "stop" must be of an array of strings'),
            ({"options": {"use_mmap": 1}}, 500, 'option "use_mmap" must be of type boolean'),
            ({"format": 123}, 500, 'invalid format: "123"; expected "json" or a valid JSON Schema object'),
            ({"format": [1]}, 500, 'invalid format: "[1]"; expected "json" or a valid JSON Schema object'),
            ({"format": "yaml"}, 500, 'invalid format: "\\"yaml\\""; expected "json" or a valid JSON Schema object'),
            (
                {"format": 123456789012345678901234567890},
                500,
                'invalid format: "123456789012345678901234567890"; expected "json" or a valid JSON Schema object',
            ),  # fmt: skip
        ]
        for i, (extra, status, text) in enumerate(cases):
            yield pytest.param(*route, _j({**base, **extra}), status, text, id=f"{name}-{i}")

    yield pytest.param(*gen, _j({**GEN, "raw": True, "system": "s"}), 400,
                       "raw mode does not support template, system, or context", id="generate-raw-system")  # fmt: skip
    yield pytest.param(*gen, _j({**GEN, "images": ["%%%"]}), 400, "illegal base64 data at input byte 0", id="img-b64")
    yield pytest.param(*gen, _j({**GEN, "images": "x"}), 400, "json: cannot unmarshal string into Go struct field "
                       "GenerateRequest.images of type []api.ImageData", id="img-type")  # fmt: skip
    yield pytest.param(*gen, _j({**GEN, "context": ["a"]}), 400, "json: cannot unmarshal string into Go struct field "
                       "GenerateRequest.context of type int", id="context-item")  # fmt: skip
    yield pytest.param(*gen, _j({**GEN, "context": [1.5]}), 400, "json: cannot unmarshal number 1.5 into Go struct "
                       "field GenerateRequest.context of type int", id="context-float")  # fmt: skip
    yield pytest.param(*gen, _j({"prompt": "hi"}), 404, "model '' not found", id="generate-no-model")

    # /api/chat messages: api.Message's own UnmarshalJSON decodes an alias type, so errors name `Alias`
    for extra, text in (
        ({"messages": "x"}, "string into Go struct field ChatRequest.messages of type []api.Message"),
        ({"messages": [1]}, "number into Go struct field ChatRequest.messages of type api.Message"),
        ({"messages": [{"role": 1}]}, "number into Go struct field Alias.role of type string"),
        ({"messages": [{"role": "user", "content": 1}]}, "number into Go struct field Alias.content of type string"),
        ({"messages": [{"role": "user", "content": ["a"]}]}, "array into Go struct field Alias.content of type string"),
        ({"messages": _history("x")}, "string into Go struct field Alias.tool_calls of type api.ToolCall"),
        (
            {"messages": _history({"function": "x"})},
            "string into Go struct field ToolCall.tool_calls.function of type api.ToolCallFunction",
        ),  # fmt: skip
        (
            {"messages": _history({"function": {"name": 1}})},
            "number into Go struct field ToolCallFunction.tool_calls.function.name of type string",
        ),  # fmt: skip
        (
            {"messages": _history({"function": {"index": "0"}})},
            "string into Go struct field ToolCallFunction.tool_calls.function.index of type int",
        ),  # fmt: skip
        ({"messages": _history({"id": 7})}, "number into Go struct field ToolCall.tool_calls.id of type string"),
        (
            {"messages": [{"role": "user", "content": "hi", "images": [1]}]},
            "number into Go struct field Alias.images of type api.ImageData",
        ),  # fmt: skip
    ):
        yield pytest.param(*chat, _j({**CHAT, **extra}), 400, f"json: cannot unmarshal {text}", id=f"chat-{text[:40]}")
    yield pytest.param(*chat, _j({"messages": []}), 400, "model is required", id="chat-no-model")
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    yield pytest.param(*chat, _j({**CHAT, "tools": tools}), 400,
                       "registry.ollama.ai/library/tiny:latest does not support tools", id="chat-tools")  # fmt: skip

    # /v1/chat/completions: openai.ToolCall's function is an anonymous struct
    anonymous = 'struct { Name string "json:\\"name\\""; Arguments string "json:\\"arguments\\"" }'
    for calls, text in (
        (["x"], "string into Go struct field Message.messages.tool_calls of type openai.ToolCall"),
        ([{"function": "x"}], f"string into Go struct field ToolCall.messages.tool_calls.function of type {anonymous}"),
        ([{"function": {"name": 1}}], "number into Go struct field .messages.tool_calls.function.name of type string"),
        (
            [{"function": {"name": "f", "arguments": {}}}],
            "object into Go struct field .messages.tool_calls.function.arguments of type string",
        ),  # fmt: skip
        ([{"index": "0"}], "string into Go struct field ToolCall.messages.tool_calls.index of type int"),
        ("x", "string into Go struct field Message.messages.tool_calls of type []openai.ToolCall"),
    ):
        messages = [{"role": "assistant", "content": "", "tool_calls": calls}, {"role": "user", "content": "hi"}]
        yield pytest.param(
            *v1, _j({**V1, "messages": messages}), 400, f"json: cannot unmarshal {text}", id=f"v1-{text[:30]}"
        )
    for extra, status, text in (
        ({"messages": []}, 400, "[] is too short - 'messages'"),
        (
            {"messages": "x"},
            400,
            "json: cannot unmarshal string into Go struct field ChatCompletionRequest.messages "
            "of type []openai.Message",
        ),  # fmt: skip
        ({"messages": [{"role": "user", "content": 2}]}, 400, "invalid message content type: float64"),
        ({"messages": [{"role": "user", "content": True}]}, 400, "invalid message content type: bool"),
        (
            {"stream": "yes"},
            400,
            "json: cannot unmarshal string into Go struct field ChatCompletionRequest.stream of type bool",
        ),  # fmt: skip
        ({"model": "nope"}, 404, "model 'nope' not found"),
    ):
        yield pytest.param(*v1, _j({**V1, **extra}), status, text, id=f"v1-{text[:40]}")
    completions = ("POST", "/v1/completions")
    yield pytest.param(*completions, _j({"model": "tiny", "prompt": "hi", "stop": [1]}), 400,
                       "invalid type for 'stop' field: float64", id="v1-completions-stop")  # fmt: skip
    yield pytest.param(*completions, _j({"model": "tiny", "prompt": 1}), 400, "json: cannot unmarshal number into Go "
                       "struct field CompletionRequest.prompt of type string", id="v1-completions-prompt")  # fmt: skip
    yield pytest.param("POST", "/v1/embeddings", _j({"model": "tiny"}), 400, "invalid input", id="v1-embeddings-input")

    embed = ("POST", "/api/embed")
    yield pytest.param(*embed, _j({"model": "tiny", "input": 123}), 400, "invalid input type", id="embed-input")
    yield pytest.param(*embed, _j({"model": "nope", "input": "a"}), 404,
                       'model "nope" not found, try pulling it first', id="embed-missing")  # fmt: skip
    yield pytest.param(*embed, _j({"model": "tiny", "input": "a", "dimensions": "8"}), 400, "json: cannot unmarshal "
                       "string into Go struct field EmbedRequest.dimensions of type int", id="embed-dims")  # fmt: skip
    yield pytest.param("POST", "/api/embeddings", _j({}), 400, "model is required", id="embeddings-no-model")
    show = ("POST", "/api/show")
    yield pytest.param(*show, _j({}), 400, "model is required", id="show-no-model")
    yield pytest.param(*show, _j({"model": "nope"}), 404, "model 'nope' not found", id="show-missing")
    yield pytest.param(*show, _j({"model": "tiny", "verbose": "x"}), 400, "json: cannot unmarshal string into Go "
                       "struct field ShowRequest.verbose of type bool", id="show-verbose")  # fmt: skip
    copy = ("POST", "/api/copy")
    yield pytest.param(*copy, _j({"source": "", "destination": "y"}), 400, 'source "" is invalid', id="copy-empty")
    yield pytest.param(*copy, _j({"source": "nope", "destination": "y"}), 404, 'model "nope" not found', id="copy-404")
    yield pytest.param(*copy, _j({"source": "tiny", "destination": "bad name!"}), 400,
                       'destination "bad name!" is invalid', id="copy-bad-destination")  # fmt: skip
    delete = ("DELETE", "/api/delete")
    yield pytest.param(*delete, _j({}), 400, "model is required", id="delete-no-model")
    yield pytest.param(*delete, _j({"model": "nope"}), 404, "model 'nope' not found", id="delete-missing")
    yield pytest.param("POST", "/api/pull", _j({}), 400, "invalid model name", id="pull-no-model")
    yield pytest.param("POST", "/api/push", _j({}), 400, "model is required", id="push-no-model")
    create = ("POST", "/api/create")
    yield pytest.param(*create, _j({"model": "m3"}), 400, "neither 'from' or 'files' was specified", id="create-empty")
    yield pytest.param(*create, _j({"model": "bad name!", "from": "tiny"}), 400, "invalid model name", id="create-name")
    # mlx-shim's bounds on what create writes into a manifest (Ollama has none; README: Limits and timeouts)
    big = "x" * ((1 << 20) + 1)
    for key in ("system", "template", "license"):
        text = f"{key} is {len(big)} bytes; at most 1048576 are allowed"
        yield pytest.param(*create, _j({"model": "m4", "from": "tiny", key: big}), 400, text, id=f"create-{key}")
    messages = [{"role": "user", "content": "hi"}] * 10_001
    yield pytest.param(*create, _j({"model": "m4", "from": "tiny", "messages": messages}), 400,
                       "10001 messages; at most 10000 are allowed", id="create-messages")  # fmt: skip


CASES = list(_framing_cases()) + list(_semantic_cases())


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as c:
        yield c


def _error_text(path: str, response: httpx.Response) -> str:
    """The error's text from the route's layout: Ollama's {"error": text}, the /v1 middleware's OpenAI object,
    or Anthropic's {"type": "error", "error": {...}}."""
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    if path == "/v1/messages":
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
        return str(body["error"]["message"])
    if path.startswith("/v1"):
        kind = {400: "invalid_request_error", 404: "not_found_error"}.get(response.status_code, "api_error")
        assert body == {"error": {"message": body["error"]["message"], "type": kind, "param": None, "code": None}}
        return str(body["error"]["message"])
    assert list(body) == ["error"], body
    return str(body["error"])


@pytest.mark.parametrize(("method", "path", "body", "status", "text"), CASES)
def test_bad_input_is_answered_as_ollama_answers_it(
    client: httpx.Client, method: str, path: str, body: bytes, status: int, text: str
) -> None:
    response = client.request(method, path, content=body)
    assert (response.status_code, _error_text(path, response)) == (status, text)
    assert client.get("/").text == "Ollama is running"


def test_the_corpus_is_large_and_its_5xx_are_only_the_listed_ones() -> None:
    assert len(CASES) >= 300
    five_xx = {p.values[4].split(":")[0].split(" must")[0] for p in CASES if p.values[3] >= 500}
    assert five_xx == {'option "temperature"', 'option "num_ctx"', 'option "stop"', 'option "use_mmap"',
                       "invalid format"}, five_xx  # fmt: skip


@pytest.mark.parametrize(("depth", "where"), [(1000, "x"), (5000, "x"), (9998, "x"), (3000, "options")])
def test_deep_nesting_within_gos_limit_is_decoded(client: httpx.Client, depth: int, where: str) -> None:
    """Go's decoder accepts 10,000 levels (the body's object is one): an unknown field is ignored, a known one
    gets its type error."""
    nested = b"[" * depth + b"]" * depth
    body = b'{"model":"tiny","prompt":"hi","stream":false,"options":{"num_predict":1},"%s":%s}' % (
        where.encode(),
        nested,
    )
    if where == "options":
        body = b'{"model":"tiny","prompt":"hi","stream":false,"options":%s}' % nested
    response = client.post("/api/generate", content=body)
    if where == "x":
        assert response.status_code == 200 and response.json()["done"]
    else:
        text = (
            "json: cannot unmarshal array into Go struct field GenerateRequest.options of type map[string]interface {}"
        )
        assert (response.status_code, response.json()) == (400, {"error": text})


@pytest.mark.parametrize(
    "extra",
    [
        {"options": {"seed": 2**64, "num_predict": 1}},  # Go's int64(float64) conversion: no seed
        {"options": {"seed": 2**63, "num_predict": 1, "temperature": 0.5}},
        {"options": {"num_predict": 10**30}},  # no limit, as Go's conversion makes it negative
        {"options": {"repeat_penalty": -1, "num_predict": 2}},  # llama.cpp applies it as given
        {"options": {"repeat_penalty": 0.5, "num_predict": 2}},
        {"keep_alive": 1e10, "options": {"num_predict": 1}},  # past Go's longest duration: forever
        {"keep_alive": 1e300, "options": {"num_predict": 1}},
        {"keep_alive": "2540400h", "options": {"num_predict": 1}},  # within it: about 290 years
    ],
)
def test_extreme_values_ollama_accepts_are_served(client: httpx.Client, extra: dict[str, Any]) -> None:
    body = {**GEN, "options": {"num_predict": 1}, **extra}
    if body["options"].get("num_predict") == 10**30:
        body["options"] = {"num_predict": 10**30, "stop": ["a", "e", "i", "o", "u", " "]}
    response = client.post("/api/generate", content=_j(body))
    assert response.status_code == 200 and response.json()["done"], response.text
    ps = client.get("/api/ps")
    assert ps.status_code == 200 and ps.json()["models"][0]["name"] == "tiny:latest"
    client.post("/api/generate", json={"model": "tiny", "keep_alive": "5m"})  # the next case starts as usual


def test_uploads_that_are_not_a_model_are_refused_with_the_reason(
    client: httpx.Client, tiny_model_dir: Path, tmp_path: Path
) -> None:
    uploads: list[tuple[str, Callable[[Path], object], str]] = [
        ("config.json", lambda p: p.write_text("[]"), "config.json is not a JSON object"),
        (
            "model.safetensors",
            lambda p: p.write_bytes(struct.pack("<Q", 2**62) + p.read_bytes()[8:]),
            "model.safetensors: safetensors header of 4611686018427387904 bytes in a file of",
        ),  # fmt: skip
        ("model.safetensors", lambda p: p.write_bytes(p.read_bytes()[:-1000]), "model.safetensors: truncated"),
    ]
    for i, (name, corrupt, reason) in enumerate(uploads):
        work = tmp_path / f"upload{i}"
        shutil.copytree(tiny_model_dir, work)
        corrupt(work / name)
        files = {}
        for file in sorted(p for p in work.iterdir() if p.is_file()):
            data = file.read_bytes()
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            assert client.post(f"/api/blobs/{digest}", content=data).status_code in (200, 201)
            files[file.name] = digest
        response = client.post("/api/create", json={"model": "upload", "files": files, "stream": False})
        assert response.status_code == 400 and reason in response.json()["error"], response.text
        assert "upload:latest" not in [m["name"] for m in client.get("/api/tags").json()["models"]]


def _rss_bytes(pid: int) -> int:
    return int(subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True).stdout) * 1024


def test_memory_is_returned_after_a_huge_prompt(server: Server, client: httpx.Client) -> None:
    """A 4 MB prompt is a million token ids in the tokenizer and in Python; once answered, the server's RSS is
    back near where it was (it stayed some 400 MB higher before shim/memory_return.py)."""
    body = {"model": "tiny", "prompt": "hi", "stream": False, "options": {"num_predict": 1}}
    assert client.post("/api/generate", json=body).status_code == 200
    before = _rss_bytes(server.process.pid)
    huge = {**body, "prompt": "the quick brown fox jumps over the lazy dog. " * 90_000}
    assert client.post("/api/generate", json=huge).status_code == 200
    deadline = time.monotonic() + 10  # the memory goes back just after the answer is sent
    while (grown := _rss_bytes(server.process.pid) - before) >= 150 * 2**20 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert grown < 150 * 2**20, f"RSS {grown / 2**20:.0f} MiB higher"
