"""/v1/responses end to end over real MLX: the official `openai` client's `responses.create` (whole and streamed,
and a tool round trip: the call out, its output back in), a zstd body as Codex sends it, and one real agent
run with the OpenAI Agents SDK (its Responses model, a function tool it executes, the answer after)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import agents
import httpx
import openai
import pytest
import zstandard

from scripts.tiny_model import corpus

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
ASK = "What is the weather in Paris?"


@pytest.fixture(scope="module")
def client(server: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="ignored")


def test_whole_response(client: openai.OpenAI) -> None:
    out = client.responses.create(
        model="qwen-tiny", input="Hello!", instructions="Answer briefly.", temperature=0, max_output_tokens=32,
        reasoning={"effort": "none"},
    )  # fmt: skip
    assert out.object == "response" and out.id.startswith("resp_") and out.status == "completed"
    assert out.output_text.strip() and out.instructions == "Answer briefly." and out.store is False
    assert out.usage and out.usage.output_tokens > 0
    assert out.usage.total_tokens == out.usage.input_tokens + out.usage.output_tokens


def test_streamed_response(client: openai.OpenAI) -> None:
    events = list(
        client.responses.create(
            model="qwen-tiny", input="Hello!", temperature=0, max_output_tokens=32, reasoning={"effort": "none"},
            stream=True,
        )
    )  # fmt: skip
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]  # fmt: skip
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]  # fmt: skip
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response  # type: ignore[union-attr]
    assert text.strip() and final.output_text == text and final.usage and final.usage.output_tokens > 0


def test_streamed_reasoning_then_text(client: openai.OpenAI) -> None:
    joke = next(i for i in corpus.INTENTS if i.name == "joke")
    events = list(
        client.responses.create(
            model="qwen-tiny", input="tell me a joke", temperature=0, reasoning={"effort": "high"}, stream=True
        )
    )
    summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert (summary, text) == (joke.think, joke.answer)
    final = events[-1].response  # type: ignore[union-attr]
    assert [item.type for item in final.output] == ["reasoning", "message"] and final.reasoning.effort == "high"
    assert final.output[0].summary[0].text == joke.think  # type: ignore[union-attr]


def test_tool_round_trip(client: openai.OpenAI) -> None:
    tools: Any = [WEATHER]
    first = client.responses.create(
        model="qwen-tiny", input=ASK, tools=tools, temperature=0, reasoning={"effort": "none"}
    )
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and calls[0].call_id.startswith("call_")
    assert isinstance(json.loads(calls[0].arguments), dict)
    history: Any = [
        {"role": "user", "content": ASK},
        calls[0].model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "Sunny, 22 C"},
    ]
    second = client.responses.create(
        model="qwen-tiny", input=history, tools=tools, temperature=0, reasoning={"effort": "none"}
    )
    assert second.output_text.strip() and [item.type for item in second.output] == ["message"]


def test_zstd_body_as_codex_sends_it(server: Any) -> None:
    body = {"model": "qwen-tiny", "input": "Hello!", "max_output_tokens": 8, "reasoning": {"effort": "none"}}
    compressed = zstandard.ZstdCompressor().compress(json.dumps(body).encode())
    headers = {"Content-Encoding": "zstd", "Content-Type": "application/json"}
    r = httpx.post(server.url + "/v1/responses", content=compressed, headers=headers, timeout=60)
    assert r.status_code == 200 and r.json()["status"] == "completed"
    r = httpx.post(server.url + "/v1/responses", content=json.dumps(body).encode(), headers=headers, timeout=60)
    assert (r.status_code, r.json()["error"]["message"]) == (400, "invalid input: magic number mismatch")


def test_agents_sdk_runs_a_tool_and_answers(server: Any) -> None:
    agents.set_tracing_disabled(True)  # tracing would export to api.openai.com
    ran: list[str] = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """Get the current weather for a city."""
        ran.append(city)
        return "Sunny, 22 C"

    model = agents.OpenAIResponsesModel(
        model="qwen-tiny", openai_client=openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="ignored")
    )
    agent = agents.Agent(
        name="weather", tools=[get_weather], model=model,
        model_settings=agents.ModelSettings(temperature=0, reasoning={"effort": "none"}),  # type: ignore[arg-type]
    )  # fmt: skip
    # The tiny model calls the tool again after the SDK's schema (titles, additionalProperties) before answering.
    result = asyncio.run(agents.Runner.run(agent, ASK, max_turns=4))
    assert ran and set(ran) == {"Paris"}
    assert isinstance(result.final_output, str) and result.final_output.strip()
    kinds = [item.type for item in result.new_items]
    assert kinds[:2] == ["tool_call_item", "tool_call_output_item"] and kinds[-1] == "message_output_item"
