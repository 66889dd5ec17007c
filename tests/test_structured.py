"""Structured output through the real server: `format` ("json" or a JSON schema) on /api/generate and
/api/chat, `response_format` on /v1, and LangChain's with_structured_output, all on the trained tiny model.

Every answer that ends with done_reason "stop" must parse and validate against its schema (the grammar's
promise); the share that stops within 256 tokens is the tiny model's quality under the constraint."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import ollama
import openai
import pytest
from langchain_ollama import ChatOllama
from pydantic import BaseModel

# Nested objects, arrays, enums, required fields, numbers and booleans.
SCHEMAS: dict[str, dict[str, Any]] = {
    "person": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0, "maximum": 150}},
        "required": ["name", "age"],
    },
    "enum": {
        "type": "object",
        "properties": {"color": {"type": "string", "enum": ["red", "green", "blue"]}, "ok": {"type": "boolean"}},
        "required": ["color", "ok"],
    },
    "nested": {
        "type": "object",
        "properties": {
            "city": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "population": {"type": "integer"}},
                "required": ["name", "population"],
            },
            "capital": {"type": "boolean"},
        },
        "required": ["city", "capital"],
    },
    "arrays": {
        "type": "object",
        "properties": {
            "scores": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 4},
            "labels": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "maxItems": 3},
        },
        "required": ["scores", "labels"],
    },
    "numbers": {
        "type": "object",
        "properties": {"score": {"type": "number"}, "count": {"type": "integer"}, "valid": {"type": "boolean"}},
        "required": ["score", "count", "valid"],
    },
}
TEMPERATURES = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.0, 1.2)
NUM_PREDICT = 256


def post(server: Any, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=120)


def test_schemas_are_followed_and_the_tiny_model_stops(server: Any) -> None:
    """50 generations across five schemas, seeds and temperatures, half through the ollama client's chat,
    half through raw /api/generate: every stop is valid; at least 95% stop within 256 tokens."""
    client = ollama.Client(host=server.url)
    outcomes: list[tuple[str, str, str]] = []
    for name, schema in SCHEMAS.items():
        for seed, temperature in enumerate(TEMPERATURES):
            options = {"temperature": temperature, "seed": seed, "num_predict": NUM_PREDICT}
            prompt = f"Describe a {name} in JSON."
            if seed % 2:
                body = {"model": "qwen-tiny", "prompt": prompt, "format": schema, "think": False, "stream": False}
                resp = post(server, "/api/generate", {**body, "options": options})
                assert resp.status_code == 200, resp.text
                reply = resp.json()
                outcomes.append((name, reply["done_reason"], reply["response"]))
            else:
                chat = client.chat(
                    "qwen-tiny", [{"role": "user", "content": prompt}], format=schema, think=False, options=options
                )
                outcomes.append((name, chat.done_reason or "", chat.message.content or ""))
    stopped = [(name, text) for name, reason, text in outcomes if reason == "stop"]
    for name, text in stopped:
        jsonschema.validate(json.loads(text), SCHEMAS[name])
    assert all(reason in ("stop", "length") for _, reason, _ in outcomes)
    assert len(outcomes) == 50 and len(stopped) / len(outcomes) >= 0.95, outcomes


@pytest.mark.parametrize("stream", [False, True])
def test_format_json_on_generate_and_chat(server: Any, stream: bool) -> None:
    client = ollama.Client(host=server.url)
    options = {"temperature": 0.8, "seed": 3, "num_predict": NUM_PREDICT}
    generated = client.generate("qwen-tiny", "Say hello.", format="json", think=False, options=options, stream=stream)
    chunks = list(generated) if stream else [generated]
    assert chunks[-1].done_reason == "stop"
    assert isinstance(json.loads("".join(c.response for c in chunks)), dict)
    messages = [{"role": "user", "content": "Say hello."}]
    chatted = client.chat("qwen-tiny", messages, format="json", think=False, options=options, stream=stream)
    chunks = list(chatted) if stream else [chatted]
    assert chunks[-1].done_reason == "stop"
    assert isinstance(json.loads("".join(c.message.content or "" for c in chunks)), dict)


def test_thinking_stays_free_and_the_answer_follows_the_schema(server: Any) -> None:
    """As Ollama: the think block is not constrained, what follows it is."""
    schema = SCHEMAS["enum"]
    messages = [{"role": "user", "content": "Pick a color."}]
    body = {"model": "qwen-tiny", "messages": messages, "format": schema, "think": True, "stream": False}
    reply = post(server, "/api/chat", {**body, "options": {"temperature": 0, "num_predict": NUM_PREDICT}}).json()
    assert reply["done_reason"] == "stop" and reply["message"]["thinking"].strip()
    jsonschema.validate(json.loads(reply["message"]["content"]), schema)


@pytest.mark.parametrize(
    ("fmt", "quoted"),
    [("xml", r"\"xml\""), (123, "123"), ([1, 2], "[1,2]"), (True, "true"), ("JSON", r"\"JSON\"")],
)
@pytest.mark.parametrize("path", ["/api/generate", "/api/chat"])
@pytest.mark.parametrize("stream", [False, True])
def test_invalid_format_is_ollamas_500(server: Any, fmt: Any, quoted: str, path: str, stream: bool) -> None:
    body = {"model": "qwen-tiny", "format": fmt, "stream": stream}
    body |= {"prompt": "hi"} if path == "/api/generate" else {"messages": [{"role": "user", "content": "hi"}]}
    resp = post(server, path, body)
    assert resp.status_code == 500 and resp.headers["content-type"] == "application/json; charset=utf-8"
    assert resp.json() == {"error": f'invalid format: "{quoted}"; expected "json" or a valid JSON Schema object'}


def test_schema_the_grammar_cannot_compile_is_a_500(server: Any) -> None:
    for path, extra in (("/api/generate", {"prompt": "hi"}), ("/api/chat", {"messages": [{"role": "user"}]})):
        for stream in (False, True):
            body = {"model": "qwen-tiny", "format": {"type": "no-such-type"}, "stream": stream, **extra}
            resp = post(server, path, body)
            assert (resp.status_code, resp.json()) == (500, {"error": "invalid JSON schema in format"})
    ok = post(server, "/api/generate", {"model": "qwen-tiny", "prompt": "hi", "format": "json", "think": False,
                                        "stream": False, "options": {"num_predict": 64}})  # fmt: skip
    assert ok.status_code == 200  # and the server keeps serving


def test_no_format_and_load_only_requests_skip_the_check(server: Any) -> None:
    """null and "" mean no format (LangChain's OllamaLLM sends ""); a load-only request never reaches the
    runner, so Ollama does not look at its format."""
    for fmt in (None, ""):
        body = {"model": "qwen-tiny", "prompt": "hi", "format": fmt, "think": False, "stream": False}
        resp = post(server, "/api/generate", {**body, "options": {"temperature": 0, "num_predict": 8}})
        assert resp.status_code == 200 and resp.json()["done_reason"] in ("stop", "length")
    resp = post(server, "/api/generate", {"model": "qwen-tiny", "format": "xml"})
    assert resp.status_code == 200 and resp.json()["done_reason"] == "load"


def test_empty_schema_means_any_json(server: Any) -> None:
    body = {"model": "qwen-tiny", "prompt": "Answer in JSON.", "format": {}, "think": False, "stream": False}
    reply = post(server, "/api/generate", {**body, "options": {"temperature": 0, "num_predict": 64}}).json()
    assert reply["done_reason"] == "stop"
    json.loads(reply["response"])


def test_openai_response_format(server: Any) -> None:
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="ignored")
    messages: Any = [{"role": "user", "content": "Describe a person in JSON."}]
    schema = SCHEMAS["person"]
    completion = client.chat.completions.create(
        model="qwen-tiny",
        messages=messages,
        max_tokens=NUM_PREDICT,
        seed=1,
        reasoning_effort="none",
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema}},
    )
    assert completion.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(completion.choices[0].message.content or ""), schema)

    stream = client.chat.completions.create(
        model="qwen-tiny", messages=messages, max_tokens=NUM_PREDICT, seed=2, reasoning_effort="none", stream=True,
        response_format={"type": "json_object"},
    )  # fmt: skip
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert isinstance(json.loads(text), dict)

    plain = client.chat.completions.create(
        model="qwen-tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=16, temperature=0,
        reasoning_effort="none", response_format={"type": "text"},
    )  # fmt: skip
    assert plain.choices[0].message.content  # no constraint: the model's usual plain greeting
    with pytest.raises(json.JSONDecodeError):
        json.loads(plain.choices[0].message.content or "")

    with pytest.raises(openai.InternalServerError) as bad:
        client.with_options(max_retries=0).chat.completions.create(
            model="qwen-tiny", messages=messages, response_format={"type": "json_schema",
                                                                  "json_schema": {"name": "x", "schema": "xml"}},
        )  # fmt: skip
    assert bad.value.status_code == 500 and "invalid format" in bad.value.message


class Person(BaseModel):
    name: str
    age: int


def test_langchain_with_structured_output(server: Any) -> None:
    """ChatOllama's default method sends the pydantic model's JSON schema as `format` (qwen-tiny thinks
    first, unconstrained, as LangChain leaves `think` unset)."""
    llm = ChatOllama(model="qwen-tiny", base_url=server.url, temperature=0, num_predict=NUM_PREDICT, seed=0)
    person = llm.with_structured_output(Person).invoke("Describe a person in JSON.")
    assert isinstance(person, Person) and person.age >= 0


def test_closed_objects_keep_what_the_schema_says() -> None:
    """Only objects that list properties and say nothing about other keys are closed (llama.cpp's rule);
    a property literally named `properties` is a name, not a keyword."""
    from shim.engine.grammar import closed

    schema = {
        "type": "object",
        "properties": {"properties": {"type": "object", "properties": {"a": {}}}, "free": {"type": "object"}},
        "$defs": {"open": {"properties": {"b": {}}, "additionalProperties": {"type": "integer"}}},
        "items": [{"properties": {"c": {}}}],
    }
    assert closed(schema) == {
        "type": "object",
        "properties": {
            "properties": {"type": "object", "properties": {"a": {}}, "additionalProperties": False},
            "free": {"type": "object"},
        },
        "$defs": {"open": {"properties": {"b": {}}, "additionalProperties": {"type": "integer"}}},
        "items": [{"properties": {"c": {}}, "additionalProperties": False}],
        "additionalProperties": False,
    }
