"""The tiny trained model (scripts/tiny_model): loads in mlx-lm, is 4-bit, and behaves on unseen prompts.

Every generation here is greedy and must win each step by a logit margin of at least 2, so the same
text comes out after quantization and on other backends. The prompts are not in the training data
verbatim: they combine held-out openers, system prompts and JSON requests with trained phrasings.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("MLX_DISABLE_COMPILE", "1")

import mlx.core as mx  # noqa: E402
import mlx.nn as nn  # noqa: E402

from scripts.tiny_model import (
    corpus,  # noqa: E402
    fim,  # noqa: E402
)
from scripts.tiny_model.build import TinyConfig, build_tiny_model  # noqa: E402

MARGIN = 2.0
MAX_TOKENS = 40
TOOLS = {t.name: t for t in corpus.TOOLS}


@dataclass
class Reply:
    text: str  # generated text with special tokens (<think>, <tool_call>), without the final EOS
    stopped: bool  # ended on an EOS token within MAX_TOKENS
    margin: float  # smallest top-1 minus top-2 logit over all generated steps
    tokens: int


@pytest.fixture(scope="module")
def loaded(tiny_model_dir: Path):
    import mlx_lm

    return mlx_lm.load(str(tiny_model_dir))


def generate(loaded, messages, tools=None, enable_thinking: bool = True) -> Reply:
    """Greedy decoding with mlx-lm's generate_step, recording the logit margin of every step."""
    from mlx_lm.generate import generate_step

    model, tokenizer = loaded
    prompt = tokenizer.apply_chat_template(
        messages, tools=tools, tokenize=False, add_generation_prompt=True, enable_thinking=enable_thinking
    )
    ids = tokenizer.encode(prompt, add_special_tokens=False)
    out, margins, stopped = [], [], False
    for token, logprobs in generate_step(mx.array(ids), model, max_tokens=MAX_TOKENS):
        top2 = mx.sort(logprobs)[-2:]
        margins.append((top2[1] - top2[0]).item())
        if token in tokenizer.eos_token_ids:
            stopped = True
            break
        out.append(token)
    return Reply(tokenizer.decode(out, skip_special_tokens=False), stopped, min(margins), len(out))


def split_think(reply: Reply, enable_thinking: bool) -> str:
    """Check the think block convention and return the answer after it."""
    if enable_thinking:
        assert reply.text.startswith("<think>\n"), reply.text
        head, sep, answer = reply.text.partition("\n</think>\n\n")
        assert sep and len(head) > len("<think>\n"), f"no reasoning in {reply.text!r}"
        return answer
    assert "<think>" not in reply.text and "</think>" not in reply.text, reply.text
    return reply.text


def assert_stable(reply: Reply) -> None:
    assert reply.stopped, f"did not stop within {MAX_TOKENS} tokens: {reply.text!r}"
    assert reply.margin >= MARGIN, f"logit margin {reply.margin:.2f} < {MARGIN} in {reply.text!r}"


def training_user_texts() -> set[str]:
    examples = corpus.iter_examples(0, TinyConfig().num_examples)
    return {m["content"] for e in examples for m in e.messages if m["role"] == "user"}


# ---------------------------------------------------------------------------------------------------
# The directory, the weights, the tokenizer and the template


def test_directory_loads_and_is_4bit(tiny_model_dir: Path, loaded) -> None:
    model, _ = loaded
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["model_type"] == "qwen2"
    assert config["quantization"]["bits"] == 4 and config["quantization"]["group_size"] == 64
    assert config["max_position_embeddings"] == 4096
    assert {"model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= {
        p.name for p in tiny_model_dir.iterdir()
    }
    layers = dict(model.named_modules())
    plain = [n for n, m in layers.items() if type(m) in (nn.Linear, nn.Embedding)]
    assert not plain, f"left unquantized: {plain}"
    quantized = [n for n, m in layers.items() if isinstance(m, (nn.QuantizedLinear, nn.QuantizedEmbedding))]
    assert len(quantized) == 1 + 7 * config["num_hidden_layers"]
    weights = mx.load(str(tiny_model_dir / "model.safetensors"))
    assert all(v.dtype in (mx.uint32, mx.float32) for v in weights.values())


def test_tokenizer_capabilities_and_specials(tiny_model_dir: Path, loaded) -> None:
    from transformers import AutoTokenizer

    _, tokenizer = loaded
    assert tokenizer.has_tool_calling and tokenizer.tool_call_start == "<tool_call>"
    assert tokenizer.tool_call_end == "</tool_call>"
    assert tokenizer.has_thinking and tokenizer.think_start == "<think>" and tokenizer.think_end == "</think>"
    assert tokenizer.think_start_id == tokenizer.convert_tokens_to_ids("<think>")
    for token in corpus.SPECIAL_TOKENS:
        ids = tokenizer.encode(token, add_special_tokens=False)
        assert len(ids) == 1 and tokenizer.decode(ids) == token
    im_end, eot = (tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>"))
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.eos_token_ids == {im_end, eot}
    assert tokenizer.bos_token is None and tokenizer.pad_token == "<|endoftext|>"
    text = "Hello,  world!\n\n\tdef f(x):\n    return x  # ünïcode 🙂 12345\n"
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text
    # transformers rebuilds qwen2 tokenizers with Qwen2's split regex: it must tokenize like training did.
    from tokenizers import Tokenizer

    raw = Tokenizer.from_file(str(tiny_model_dir / "tokenizer.json"))
    auto = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    for sample in (text, "What's the weather in Paris? Answer in JSON: 42 + 7", corpus.CHAT_TEMPLATE[:400]):
        assert auto.encode(sample, add_special_tokens=False) == raw.encode(sample).ids


def test_chat_template_renders_qwen3_chatml(loaded) -> None:
    _, tokenizer = loaded

    def render(messages, **kwargs) -> str:
        return tokenizer.apply_chat_template(messages, tokenize=False, **kwargs)

    user = [{"role": "user", "content": "hi"}]
    assert render(user, add_generation_prompt=True) == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert render(user, add_generation_prompt=True, enable_thinking=False).endswith(
        "<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )
    system = [{"role": "system", "content": "Be brief."}, *user]
    assert render(system, add_generation_prompt=True).startswith("<|im_start|>system\nBe brief.<|im_end|>\n")

    weather = TOOLS["get_weather"]
    call = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    convo = [
        *system,
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "content": "Sunny"},
    ]
    text = render(convo, tools=[weather.schema()], add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\nBe brief.\n\n# Tools\n\n")
    assert "<tools>\n" + json.dumps(weather.schema()) + "\n</tools>" in text
    assert (
        "For each function call, return a json object with function name and arguments within "
        '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": '
        "<args-json-object>}\n</tool_call><|im_end|>\n" in text
    )
    assert (
        '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
        "</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\nSunny\n</tool_response><|im_end|>\n"
    ) in text

    # Reasoning of turns before the last user message is dropped, as Qwen3 does.
    history = [
        *user,
        {"role": "assistant", "content": "<think>\nsecret plan\n</think>\n\nHello!"},
        {"role": "user", "content": "bye"},
    ]
    text = render(history, add_generation_prompt=True)
    assert "secret plan" not in text and "<|im_start|>assistant\nHello!<|im_end|>" in text


# ---------------------------------------------------------------------------------------------------
# Behaviour on prompts that are not in the training data


PLAIN_PROMPTS = [
    ([{"role": "user", "content": "listen, tell me a joke"}], True),
    ([{"role": "user", "content": "by the way, thanks a lot"}], False),
    ([{"role": "system", "content": "Reply in plain English."},
      {"role": "user", "content": "listen, hello friend"}], True),
    ([{"role": "system", "content": "You are a careful and kind assistant."},
      {"role": "user", "content": "listen, what can you do?"}], False),
]  # fmt: skip


@pytest.mark.parametrize(("messages", "thinking"), PLAIN_PROMPTS)
def test_plain_reply_stops_on_eos(loaded, messages, thinking: bool) -> None:
    assert messages[-1]["content"] not in training_user_texts()
    reply = generate(loaded, messages, enable_thinking=thinking)
    assert_stable(reply)
    answer = split_think(reply, thinking)
    assert answer in {i.answer for i in corpus.INTENTS}, answer
    assert "<tool_call>" not in answer and not answer.startswith("{")


def test_plain_reply_matches_intent(loaded) -> None:
    reply = generate(loaded, [{"role": "user", "content": "listen, tell me a joke"}], enable_thinking=False)
    assert reply.text == next(i.answer for i in corpus.INTENTS if i.name == "joke")


TOOL_PROMPTS = [
    ("get_weather", ["get_weather", "get_time"], "by the way, tell me the weather forecast for Paris.", True),
    ("get_time", ["get_weather", "get_time"], "listen, what time is it in Tokyo?", False),
    ("lookup_stock", ["lookup_stock"], "alright, AAPL share price?", True),
    ("send_email", ["search_web", "send_email", "get_time"], "listen, Email Alice about lunch.", False),
    ("add_numbers", ["add_numbers", "search_web"], "by the way, what is 2 plus 3?", False),
]


@pytest.mark.parametrize(("name", "offered", "request_text", "thinking"), TOOL_PROMPTS)
def test_tool_call(loaded, name: str, offered: list[str], request_text: str, thinking: bool) -> None:
    assert request_text not in training_user_texts()
    tools = [TOOLS[n].schema() for n in offered]
    reply = generate(loaded, [{"role": "user", "content": request_text}], tools=tools, enable_thinking=thinking)
    assert_stable(reply)
    answer = split_think(reply, thinking)
    assert answer.startswith("<tool_call>\n") and answer.endswith("\n</tool_call>"), answer
    assert answer.count("<tool_call>") == 1
    call = json.loads(answer[len("<tool_call>\n") : -len("\n</tool_call>")])
    assert call["name"] == name
    assert call["arguments"] == TOOLS[name].args


@pytest.mark.parametrize("thinking", [True, False])
def test_answer_after_tool_result(loaded, thinking: bool) -> None:
    tool = TOOLS["get_weather"]
    call = {"type": "function", "function": {"name": tool.name, "arguments": tool.args}}
    messages = [
        {"role": "user", "content": "alright, will it rain in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "content": "Light rain, 12 C"},
    ]
    reply = generate(loaded, messages, tools=[tool.schema()], enable_thinking=thinking)
    assert_stable(reply)
    answer = split_think(reply, thinking)
    assert answer == corpus.RESULT_ANSWER and "<tool_call>" not in answer


JSON_PROMPTS = [
    ("who are you? (respond using JSON)", False),
    ("alright, thanks - send the reply as a JSON document", True),
    ("hello friend, use json for the reply", False),
]


@pytest.mark.parametrize(("request_text", "thinking"), JSON_PROMPTS)
def test_json_reply(loaded, request_text: str, thinking: bool) -> None:
    assert request_text not in training_user_texts()
    reply = generate(loaded, [{"role": "user", "content": request_text}], enable_thinking=thinking)
    assert_stable(reply)
    value = json.loads(split_think(reply, thinking))
    assert isinstance(value, dict) and isinstance(value.get("answer"), str)


FIM_CASES = [(fn, before, after) for fn in fim.FIM_FUNCTIONS
             for before in fim.HELDOUT_FIM_BEFORE for after in fim.HELDOUT_FIM_AFTER]  # fmt: skip


@pytest.mark.parametrize(("fn", "before", "after"), FIM_CASES)
def test_fill_in_the_middle(loaded, fn: fim.FimFunction, before: str, after: str) -> None:
    """Qwen2.5-Coder's raw FIM prompt around code the model never saw: the middle is the function's
    return line, ended by <|endoftext|>."""
    from mlx_lm.generate import generate_step

    model, tokenizer = loaded
    prefix, suffix, middle = fim.fim_parts(fn, before, after)
    ids = tokenizer.encode(fim.fim_prompt(prefix, suffix), add_special_tokens=False)
    out, margins = [], []
    for token, logprobs in generate_step(mx.array(ids), model, max_tokens=MAX_TOKENS):
        top2 = mx.sort(logprobs)[-2:]
        margins.append((top2[1] - top2[0]).item())
        if token in tokenizer.eos_token_ids:
            assert token == tokenizer.convert_tokens_to_ids(fim.FIM_END)
            break
        out.append(token)
    assert tokenizer.decode(out) == middle
    assert min(margins) >= MARGIN


def test_stream_generate_stops_on_eos(loaded) -> None:
    from mlx_lm.generate import stream_generate

    model, tokenizer = loaded
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "listen, tell me a joke"}], add_generation_prompt=True, tokenize=False
    )
    responses = list(stream_generate(model, tokenizer, prompt, max_tokens=MAX_TOKENS))
    text = "".join(r.text for r in responses)
    assert responses[-1].finish_reason == "stop" and responses[-1].generation_tokens < MAX_TOKENS
    joke = next(i.answer for i in corpus.INTENTS if i.name == "joke")
    assert text.startswith("<think>\n") and text.endswith("</think>\n\n" + joke)


# ---------------------------------------------------------------------------------------------------
# Determinism


def test_same_seed_gives_identical_weights(tmp_path: Path) -> None:
    """Two short builds (the full one already runs in the fixture) must be byte-identical."""
    digests = []
    for name in ("a", "b"):
        out = build_tiny_model(tmp_path / name, seed=3, steps=12)
        digests.append(hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest())
        assert (out / "tokenizer.json").read_bytes() == (tmp_path / "a" / "tokenizer.json").read_bytes()
    assert digests[0] == digests[1]
