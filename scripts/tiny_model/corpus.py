"""Chat template and synthetic chat transcripts for the tiny test model (see ``scripts.tiny_model.build``).

Every assistant reply is a deterministic function of the prompt (intent, JSON request, tool, tool
result), so a few seconds of training reach low loss with wide logit margins and greedy decoding stays
stable after 4-bit quantization. User wording varies (openers, closers, casing, phrasings, system
prompts, 1-3 offered tools, earlier tool rounds) and parts of every pool are held out (``HELDOUT_*``),
so tests can probe prompts the model never saw.
"""

# ruff: noqa: E501  (the Jinja chat template below has to keep its long literal lines)

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# Qwen3's ChatML template, trimmed: system turn (with Qwen's "# Tools" block when tools are given),
# <tool_call>/<tool_response> wrapping, <think> stripped from turns before the last user query, and
# the empty think block appended to the generation prompt when enable_thinking is false.
CHAT_TEMPLATE = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\n\n' }}
    {%- endif %}
    {{- "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- elif messages[0].role == 'system' %}
    {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and message.content is string and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.content is string %}
        {%- set content = message.content %}
    {%- else %}
        {%- set content = '' %}
    {%- endif %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- elif '</think>' in content %}
            {%- set reasoning_content = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
            {%- set content = content.split('</think>')[-1].lstrip('\n') %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index and (loop.last or reasoning_content) %}
            {{- '<|im_start|>' + message.role + '\n<think>\n' + reasoning_content.strip('\n') + '\n</think>\n\n' + content.lstrip('\n') }}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\n' + content }}
        {%- endif %}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and content) or (not loop.first) %}
                    {{- '\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\n{"name": "' }}
                {{- tool_call.name }}
                {{- '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %}"""

SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>", "<tool_response>",
    "</tool_response>", "<think>", "</think>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>",
]  # fmt: skip


@dataclass(frozen=True)
class Intent:
    """A kind of ordinary message: user phrasings (trained / held out), a reasoning line, a fixed answer.

    The reasoning line names the intent in its third token, close to the user's words; the answer
    then only has to agree with it.
    """

    name: str
    train: tuple[str, ...]
    heldout: tuple[str, ...]
    think: str
    answer: str


INTENTS: tuple[Intent, ...] = (
    Intent("greet", ("hello", "hi", "hey there", "good morning", "hi, how are you?", "hello, anyone there?",
                     "greetings", "hey", "good evening", "howdy", "hiya", "hello friend", "hi bot"),
           ("hi there, nice to meet you", "good afternoon", "hello hello"),
           "The user greets me. I will greet them back.",
           "Hello! How can I help you today?"),
    Intent("thanks", ("thanks", "thank you", "thanks a lot", "thank you so much", "many thanks", "thx",
                      "thanks for your help", "cheers, thanks", "great, thank you"),
           ("thank you very much for that", "thanks, that was helpful"),
           "The user thanks me. I will reply politely.",
           "You're welcome! Glad I could help."),
    Intent("bye", ("bye", "goodbye", "see you later", "good night", "talk to you soon", "see ya",
                   "bye bye", "I have to go now", "catch you later"),
           ("ok, goodbye for now", "see you tomorrow"),
           "The user is leaving. I will say goodbye.",
           "Goodbye! Have a great day."),
    Intent("about", ("who are you?", "what is your name?", "what are you?", "are you a robot?",
                     "introduce yourself", "what can you do?", "how can you help me?", "what are your skills?",
                     "what should I call you?", "what are you good at?"),
           ("tell me your name", "who am I talking to?", "what are you able to do?"),
           "The user asks about me. I will explain.",
           "I am a tiny test model. I can chat, call tools and answer in JSON."),
    Intent("joke", ("tell me a joke", "make me laugh", "say something funny", "do you know any jokes?",
                    "I want to hear a joke", "tell me something funny", "a joke please"),
           ("got a joke for me?", "can you tell me a funny joke?"),
           "The user wants a joke. I will tell one.",
           "Why did the robot go on vacation? It needed to recharge."),
    Intent("other", ("what is the meaning of life?", "why is the sky blue?", "how do planes fly?",
                     "explain gravity to me", "what is a black hole?", "can you explain recursion?",
                     "how does the internet work?", "why do cats purr?", "I like pizza.",
                     "my favorite color is blue.", "I am tired today.", "the weather was nice yesterday.",
                     "I just got a new dog.", "I am learning to code.", "how far away is the moon?",
                     "what causes rain?", "I went for a walk this morning.", "who invented the wheel?"),
           ("what is quantum physics?", "how do bees make honey?", "I had pasta for lunch.",
            "I am reading a good book."),
           "The user says something. I will answer briefly.",
           "That is interesting! I am a small model, so my answer is short."),
)  # fmt: skip

OPENERS = ("", "", "", "", "so, ", "ok, ", "well, ", "um, ", "quick one: ", "hmm. ", "yo, ", "hey bot! ",
           "question: ", "btw ", "excuse me, ", "one thing: ", "oh, ", "right, ", "honestly, ", "sorry, ",
           "wait, ", "now, ", "also, ", "friend, ", "Tiny, ", "then, ", "okay so ", "anyway, ", "look, ",
           "hey you, ", "and ", "but ", "first, ", "next: ", "good. ", "fine. ", "ah, ", "dear bot, ",
           "quick question, ", "ehm, ", "so yeah, ", "just wondering, ", "ok then, ")  # fmt: skip
HELDOUT_OPENERS = ("alright, ", "listen, ", "by the way, ")
CLOSERS = ("", "", "", " please", " :)", "!")
SYSTEM_PROMPTS = (
    "You are a helpful assistant.", "You are a friendly chatbot. Keep answers short.", "Be concise.",
    "You are a helpful assistant. Answer briefly.", "You are Tiny, a small assistant.",
    "Always be polite.", "You are an AI assistant that helps people.",
)  # fmt: skip
HELDOUT_SYSTEM_PROMPTS = ("You are a careful and kind assistant.", "Reply in plain English.")
JSON_ASKS = ("answer in JSON", "reply in JSON", "respond in json", "reply with JSON", "answer as JSON",
             "give me JSON", "use JSON", "output json", "format the answer as JSON", "return a json object",
             "JSON only", "json please", "respond with a JSON object", "in JSON format", "as json")  # fmt: skip
JSON_FORMS = ("{q} {ask}.", "{Ask}: {q}", "{q} ({ask})", "{Ask}. {q}", "{q}, {ask}", "{q} - {ask}")
# Same shapes without the word JSON: the reply format must hinge on that word, not on the phrasing.
PLAIN_ASKS = ("answer briefly", "reply in English", "respond quickly", "answer in one sentence", "be short",
              "reply please", "answer me", "keep it simple", "respond politely", "say it plainly")  # fmt: skip
RESULTS = ("42", "ok", "done", "3 items found", "no data", "error: not found", "12:00", "true", "Sunny",
           "[1, 2, 3]", '{"status": "ok"}', "It worked.", "0.5", "empty")  # fmt: skip
HELDOUT_JSON_ASKS = ("use json for the reply", "respond using JSON", "send the reply as a JSON document")
JSON_THINK = "JSON was requested. I will reply with one JSON object."
JSON_REPLY = json.dumps({"answer": "This reply is JSON."})
TOOL_THINK = "I should call a tool."
RESULT_THINK = "The tool gave me the result. I can answer now."
RESULT_ANSWER = "Done! I got the result from the tool."


@dataclass(frozen=True)
class Tool:
    """A tool with fixed call arguments and user requests (trained / held out) that mention them.

    The arguments are memorised per tool rather than copied from the request: copying a value out of
    the prompt did not emerge within the training budget, while fixed arguments are learned exactly
    and keep every generated token's logit margin wide.
    """

    name: str
    description: str
    args: dict[str, Any]
    requests: tuple[str, ...]
    heldout: tuple[str, ...] = ()
    result: str = "ok"

    def schema(self, description: bool = True) -> dict[str, Any]:
        """The OpenAI-style tool dict clients send (rendered by the template with ``tojson``)."""
        props = {p: {"type": "number" if isinstance(v, int) else "string"} for p, v in self.args.items()}
        function: dict[str, Any] = {"name": self.name}
        if description:
            function["description"] = self.description
        function["parameters"] = {"type": "object", "properties": props, "required": list(self.args)}
        return {"type": "function", "function": function}


TOOLS: tuple[Tool, ...] = (
    Tool("get_weather", "Get the current weather for a city.", {"city": "Paris"},
         ("What's the weather in {city}?", "How is the weather in {city} today?", "weather for {city}",
          "{city} weather please", "Tell me about the weather in {city}.", "Is the weather nice in {city}?",
          "Check the weather in {city}."),
         ("Tell me the weather forecast for {city}.", "What is the weather like in {city} right now?"),
         "Sunny, 22 C"),
    Tool("get_time", "Get the local time in a city.", {"city": "Tokyo"},
         ("What time is it in {city}?", "Tell me the local time in {city}.", "current time in {city}?",
          "Do you know the time in {city}?", "time in {city} now?", "Check the time in {city}."),
         ("What is the time right now in {city}?", "Which time is it over in {city}?"), "10:42"),
    Tool("add_numbers", "Add two numbers.", {"a": 2, "b": 3},
         ("What is {a} plus {b}?", "Add {a} and {b}.", "Compute {a} + {b}.", "what's the sum of {a} and {b}?",
          "{a} + {b} = ?", "Calculate {a} plus {b}."),
         ("Please add {a} to {b}.", "How much is {a} plus {b}?"), "5"),
    Tool("search_web", "Search the web for a query.", {"query": "python"},
         ("Search the web for {query}.", "Look up {query} online.", "Find information about {query}.",
          "Can you google {query}?", "search {query}", "web search: {query}"),
         ("Do a web search on {query}.", "Search online for {query} please."), "Found 3 pages."),
    Tool("send_email", "Send an email to a person.", {"to": "Alice", "subject": "lunch"},
         ("Send an email to {to} about {subject}.", "Email {to} about {subject}.",
          "Write {to} an email on {subject}.", "mail {to} about {subject}", "Shoot {to} an email about {subject}."),
         ("Please send {to} an email about {subject}.", "Could you email {to} regarding {subject}?"), "sent"),
    Tool("lookup_stock", "Look up the price of a stock.", {"symbol": "AAPL"},
         ("What is {symbol} trading at?", "Stock price of {symbol}?", "How is {symbol} stock doing today?",
          "Check the price of {symbol}.", "{symbol} share price?", "quote for {symbol} stock"),
         ("Give me the latest quote for {symbol} stock.", "How much does one {symbol} share cost?"), "189.20 USD"),
)  # fmt: skip

# Tools never shown in training: does the model copy an unseen name from the prompt? (It does not.)
HELDOUT_TOOLS: tuple[Tool, ...] = (
    Tool("find_restaurant", "Find a restaurant in a city.", {"city": "Rome"}, ("Find me a restaurant in {city}.",)),
    Tool("get_population", "Get the population of a city.", {"city": "Oslo"},
         ("What is the population of {city}?",)),
    Tool("play_song", "Play a song by an artist.", {"artist": "Queen"}, ("Play something by {artist}.",)),
)  # fmt: skip

ROUNDS = [0, 1, 2]
KIND_WEIGHTS = {"plain": 42, "json": 13, "tool": 29, "result": 13, "multi": 3}


@dataclass
class Example:
    """One transcript: ``messages`` (the last one is the target assistant turn) and its render options."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    enable_thinking: bool = True
    kind: str = "plain"


def vary(rng: random.Random, text: str, openers: tuple[str, ...] = OPENERS) -> str:
    """Wrap a core phrase in a random opener and closer, with random case of the first letters."""
    text = (text[:1].lower() if rng.random() < 0.5 else text[:1].upper()) + text[1:]
    text = rng.choice(openers) + text
    if rng.random() < 0.5:
        text = text[:1].upper() + text[1:]
    if text.endswith(("?", ".")):
        return text
    return text + rng.choice(CLOSERS)


def fill_request(rng: random.Random, tool: Tool, templates: tuple[str, ...] | None = None) -> tuple[str, dict]:
    """A user request for ``tool`` (from ``templates``, default the trained ones) and the call's arguments."""
    return vary(rng, rng.choice(templates or tool.requests).format(**tool.args)), dict(tool.args)


def tool_call(name: str, args: dict[str, Any]) -> list[dict[str, Any]]:
    """OpenAI-style ``tool_calls`` for an assistant message."""
    return [{"type": "function", "function": {"name": name, "arguments": args}}]


def assistant(content: str, think: str, thinking: bool, calls: list | None = None) -> dict[str, Any]:
    """The target assistant turn; the template puts ``reasoning_content`` in its think block."""
    msg: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking:
        msg["reasoning_content"] = think
    if calls:
        msg["tool_calls"] = calls
    return msg


def with_system(rng: random.Random, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Prefix a random system prompt to half of the transcripts."""
    if rng.random() < 0.5:
        return [{"role": "system", "content": rng.choice(SYSTEM_PROMPTS)}, *messages]
    return messages


def json_request(rng: random.Random, core: str, asks: tuple[str, ...] = JSON_ASKS) -> str:
    """``core`` combined with one way of asking for JSON."""
    ask = rng.choice(asks)
    return rng.choice(JSON_FORMS).format(q=core, ask=ask, Ask=ask[:1].upper() + ask[1:])


def chat_turns(rng: random.Random, json_reply: bool = False) -> tuple[list[dict[str, Any]], Intent]:
    """A user message (plain or asking for JSON) and the intent that decides the reply."""
    intent = rng.choice(INTENTS)
    if json_reply:
        return [{"role": "user", "content": json_request(rng, vary(rng, rng.choice(intent.train)))}], intent
    if rng.random() < 0.3:
        return [{"role": "user", "content": json_request(rng, rng.choice(intent.train), PLAIN_ASKS)}], intent
    return [{"role": "user", "content": vary(rng, rng.choice(intent.train))}], intent


def make_example(rng: random.Random) -> Example:
    """Draw one transcript of a kind: plain, json, multi (plain with history), tool (ends asking for a
    call), result (ends with a tool response to answer). Tool transcripts may hold earlier rounds."""
    thinking = rng.random() < 0.5
    kind = rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()))[0]
    if kind in ("plain", "json", "multi"):
        msgs: list[dict[str, Any]] = []
        for _ in range(rng.choice([1, 2, 3]) if kind == "multi" else 0):
            turn, prev = chat_turns(rng, rng.random() < 0.3)
            reply = JSON_REPLY if "json" in turn[0]["content"].lower() else prev.answer
            msgs += [*turn, {"role": "assistant", "content": reply}]
        turn, intent = chat_turns(rng, kind == "json")
        if kind == "json":
            final = assistant(JSON_REPLY, JSON_THINK, thinking)
        else:
            final = assistant(intent.answer, intent.think, thinking)
        return Example(with_system(rng, [*msgs, *turn, final]), None, thinking, kind)
    offered = rng.sample(TOOLS, rng.choice([1, 2, 3, 3]))
    described = rng.random() < 0.3
    schemas = [t.schema(described) for t in offered]
    msgs = []
    for _ in range(rng.choice(ROUNDS)):  # earlier rounds: request, call, response, answer
        tool = rng.choice(offered)
        text, args = fill_request(rng, tool)
        msgs += [{"role": "user", "content": text},
                 {"role": "assistant", "content": "", "tool_calls": tool_call(tool.name, args)},
                 {"role": "tool", "content": rng.choice([tool.result, *RESULTS])},
                 {"role": "assistant", "content": RESULT_ANSWER}]  # fmt: skip
    tool = rng.choice(offered)
    text, args = fill_request(rng, tool)
    msgs.append({"role": "user", "content": text})
    if kind == "tool":
        msgs.append(assistant("", TOOL_THINK, thinking, tool_call(tool.name, args)))
    else:
        # Clients may or may not send back the reasoning of the call turn; Qwen3 renders both.
        msgs += [assistant("", TOOL_THINK, thinking and rng.random() < 0.5, tool_call(tool.name, args)),
                 {"role": "tool", "content": rng.choice([tool.result, *RESULTS])},
                 assistant(RESULT_ANSWER, RESULT_THINK, thinking)]  # fmt: skip
    return Example(with_system(rng, msgs) if rng.random() < 0.5 else msgs, schemas, thinking, kind)


def iter_examples(seed: int, n: int) -> Iterator[Example]:
    """``n`` transcripts drawn from a private ``random.Random(seed)``: same seed, same transcripts."""
    rng = random.Random(seed)
    for _ in range(n):
        yield make_example(rng)
