"""Chat template and synthetic chat transcripts for the tiny test model (see ``registry.tiny_model``).

Every assistant reply is a deterministic function of the prompt (intent, tool, argument values), so a
few seconds of training reach low loss with wide logit margins and greedy decoding stays stable after
4-bit quantization. User wording varies (openers, closers, casing, punctuation, slot values) and parts
of every pool are held out (``HELDOUT_*``), so tests can probe prompts the model never saw.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
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
    """A kind of ordinary message: user phrasings (trained / held out), a reasoning line, a fixed answer."""

    name: str
    train: tuple[str, ...]
    heldout: tuple[str, ...]
    think: str
    answer: str


INTENTS: tuple[Intent, ...] = (
    Intent("greet", ("hello", "hi", "hey there", "good morning", "hi, how are you?", "hello, anyone there?",
                     "greetings", "hey", "good evening", "howdy", "hiya", "hello friend", "hi bot"),
           ("hi there, nice to meet you", "good afternoon", "hello hello"),
           "The user greets me. I will greet them back.", "Hello! How can I help you today?"),
    Intent("thanks", ("thanks", "thank you", "thanks a lot", "thank you so much", "many thanks", "thx",
                      "thanks for your help", "cheers, thanks", "great, thank you"),
           ("thank you very much for that", "thanks, that was helpful"),
           "The user thanks me. I will reply politely.", "You're welcome! Glad I could help."),
    Intent("bye", ("bye", "goodbye", "see you later", "good night", "talk to you soon", "see ya",
                   "bye bye", "I have to go now", "catch you later"),
           ("ok, goodbye for now", "see you tomorrow"),
           "The user is leaving. I will say goodbye.", "Goodbye! Have a great day."),
    Intent("about", ("who are you?", "what is your name?", "what are you?", "are you a robot?",
                     "introduce yourself", "what can you do?", "how can you help me?", "what are your skills?",
                     "what should I call you?", "what are you good at?"),
           ("tell me your name", "who am I talking to?", "what are you able to do?"),
           "The user asks about me. I will explain.",
           "I am a tiny test model. I can chat, call tools and answer in JSON."),
    Intent("joke", ("tell me a joke", "make me laugh", "say something funny", "do you know any jokes?",
                    "I want to hear a joke", "tell me something funny", "a joke please"),
           ("got a joke for me?", "can you tell me a funny joke?"),
           "The user wants a joke. I will tell one.", "Why did the robot go on vacation? It needed to recharge."),
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

OPENERS = ("", "", "", "so, ", "ok, ", "well, ", "um, ", "quick one: ")
HELDOUT_OPENERS = ("alright, ", "listen, ")
CLOSERS = ("", "", "", " please", " :)", "!")
SYSTEM_PROMPTS = (
    "You are a helpful assistant.", "You are a friendly chatbot. Keep answers short.", "Be concise.",
    "You are a helpful assistant. Answer briefly.", "You are Tiny, a small assistant.",
    "Always be polite.", "You are an AI assistant that helps people.",
)  # fmt: skip
HELDOUT_SYSTEM_PROMPTS = ("You are a careful and kind assistant.", "Reply in plain English.")
JSON_FORMS = ("{q} Answer in JSON.", "Reply with JSON: {q}", "{q} (respond as a json object)",
              "Give me a JSON answer: {q}", "{q} Output json only.", "In JSON format please: {q}")  # fmt: skip
HELDOUT_JSON_FORMS = ("Respond using JSON. {q}", "{q} Use json for the reply.")
JSON_THINK = "The user wants JSON. I will reply with one JSON object."
TOOL_THINK = "I should call a tool for this."
RESULT_THINK = "The tool gave me the result. I will tell the user."
RESULT_ANSWER = "Here is the result from the tool."


@dataclass(frozen=True)
class Tool:
    """A tool: schema fields plus request templates (trained / held out) whose slots become the arguments."""

    name: str
    description: str
    params: dict[str, str]  # parameter name -> slot pool name in SLOTS
    requests: tuple[str, ...]
    heldout: tuple[str, ...] = ()
    results: tuple[str, ...] = ("ok",)

    def schema(self, description: bool = True) -> dict[str, Any]:
        """The OpenAI-style tool dict clients send (rendered by the template with ``tojson``)."""
        props = {p: {"type": "number" if SLOTS[s][0].isdigit() else "string"} for p, s in self.params.items()}
        function: dict[str, Any] = {"name": self.name}
        if description:
            function["description"] = self.description
        function["parameters"] = {"type": "object", "properties": props, "required": list(self.params)}
        return {"type": "function", "function": function}


SLOTS: dict[str, tuple[str, ...]] = {
    "city": ("Paris", "London", "Tokyo", "Berlin", "Madrid", "Rome", "Cairo", "Oslo", "Boston", "Sydney"),
    "topic": ("python", "chess", "coffee", "robots", "jazz", "football", "volcanoes", "music"),
    "person": ("Alice", "Bob", "Carol", "Dave", "Eve", "Frank", "Grace", "Judy"),
    "symbol": ("AAPL", "MSFT", "GOOG", "TSLA", "AMZN", "NVDA", "IBM", "INTC"),
    "num": tuple(str(n) for n in range(2, 20)),
    "num2": tuple(str(n) for n in range(2, 20)),
}

TOOLS: tuple[Tool, ...] = (
    Tool("get_weather", "Get the current weather for a city.", {"city": "city"},
         ("What's the weather in {city}?", "Is it cold in {city} right now?", "How is the weather in {city} today?",
          "weather for {city}", "Will it rain in {city}?", "Is it sunny in {city}?"),
         ("Tell me the weather forecast for {city}.", "Do I need an umbrella in {city}?"),
         ("Sunny, 22 C", "Rainy, 9 C")),
    Tool("get_time", "Get the local time in a city.", {"city": "city"},
         ("What time is it in {city}?", "Tell me the local time in {city}.", "current time in {city}?",
          "Do you know the time in {city}?", "What's the clock showing in {city}?"),
         ("What is the time right now in {city}?",), ("10:42", "18:05")),
    Tool("add_numbers", "Add two numbers.", {"a": "num", "b": "num2"},
         ("What is {num} plus {num2}?", "Add {num} and {num2}.", "Compute {num} + {num2}.",
          "what's the sum of {num} and {num2}?", "{num} + {num2} = ?"),
         ("Please add {num} to {num2}.",), ("21", "7")),
    Tool("search_web", "Search the web for a query.", {"query": "topic"},
         ("Search the web for {topic}.", "Look up {topic} online.", "Find information about {topic}.",
          "Can you google {topic}?", "search {topic}"),
         ("Do a web search on {topic}.",), ("Found 3 pages.",)),
    Tool("send_email", "Send an email to a person.", {"to": "person", "subject": "topic"},
         ("Send an email to {person} about {topic}.", "Email {person} about {topic}.",
          "Write {person} an email on {topic}.", "mail {person} about {topic}"),
         ("Please send {person} an email about {topic}.",), ("sent",)),
    Tool("lookup_stock", "Look up the price of a stock.", {"symbol": "symbol"},
         ("What is {symbol} trading at?", "Stock price of {symbol}?", "How is {symbol} stock doing today?",
          "Check the price of {symbol}.", "{symbol} share price?"),
         ("Give me the latest quote for {symbol} stock.",), ("189.20 USD",)),
    Tool("get_news", "Get the latest news on a topic.", {"topic": "topic"},
         ("Any news about {topic}?", "Latest headlines on {topic}.", "What's new with {topic}?",
          "Show me news on {topic}."),
         ("Tell me the news about {topic}.",), ("No big news today.",)),
    Tool("set_timer", "Set a timer in minutes.", {"minutes": "num"},
         ("Set a timer for {num} minutes.", "Start a {num} minute timer.", "Remind me in {num} minutes.",
          "timer {num} min"),
         ("Can you set a {num} minute timer?",), ("Timer set.",)),
)  # fmt: skip

# Tools never shown in training: does the model copy an unseen name from the prompt? (See tiny_model docs.)
HELDOUT_TOOLS: tuple[Tool, ...] = (
    Tool("find_restaurant", "Find a restaurant in a city.", {"city": "city"}, ("Find me a restaurant in {city}.",)),
    Tool("get_population", "Get the population of a city.", {"city": "city"},
         ("What is the population of {city}?",)),
    Tool("play_song", "Play a song by an artist.", {"artist": "person"}, ("Play something by {person}.",)),
)  # fmt: skip

KIND_WEIGHTS = {"plain": 30, "json": 14, "tool": 40, "result": 8, "multi": 8}


@dataclass
class Example:
    """One transcript: ``messages`` (the last one is the target assistant turn) and its render options."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    enable_thinking: bool = True
    kind: str = "plain"


def vary(rng: random.Random, text: str, openers: tuple[str, ...] = OPENERS) -> str:
    """Wrap a core phrase in a random opener/closer and first-letter casing."""
    text = rng.choice(openers) + text
    if rng.random() < 0.5:
        text = text[:1].upper() + text[1:]
    if text.endswith(("?", ".")):
        return text
    return text + rng.choice(CLOSERS)


def fill_request(rng: random.Random, tool: Tool, templates: tuple[str, ...] | None = None) -> tuple[str, dict]:
    """A user request for ``tool`` (from ``templates``, default the trained ones) and the call's arguments."""
    values = {slot: rng.choice(pool) for slot, pool in SLOTS.items()}
    text = rng.choice(templates or tool.requests).format(**values)
    args: dict[str, Any] = {}
    for param, slot in tool.params.items():
        args[param] = int(values[slot]) if values[slot].isdigit() else values[slot]
    return text, args


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


def make_example(rng: random.Random) -> Example:
    """Draw one transcript: plain chat, JSON reply, tool call, answer after a tool result, or two turns."""
    thinking = rng.random() < 0.5
    kind = rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()))[0]
    intent = rng.choice(INTENTS)
    if kind in ("plain", "multi"):
        msgs = [{"role": "user", "content": vary(rng, rng.choice(intent.train))},
                assistant(intent.answer, intent.think, thinking)]  # fmt: skip
        if kind == "multi":
            prev = rng.choice(INTENTS)
            msgs[:0] = [{"role": "user", "content": vary(rng, rng.choice(prev.train))},
                        {"role": "assistant", "content": f"<think>\n{prev.think}\n</think>\n\n{prev.answer}"}]
        return Example(with_system(rng, msgs), None, thinking, kind)
    if kind == "json":
        question = rng.choice(JSON_FORMS).format(q=rng.choice(intent.train))
        reply = json.dumps({"answer": intent.answer})
        msgs = [{"role": "user", "content": question}, assistant(reply, JSON_THINK, thinking)]
        return Example(with_system(rng, msgs), None, thinking, kind)
    tool = rng.choice(TOOLS)
    text, args = fill_request(rng, tool)
    offered = [tool, *rng.sample([t for t in TOOLS if t is not tool], rng.choice([0, 0, 1, 2]))]
    rng.shuffle(offered)
    described = rng.random() < 0.4
    schemas = [t.schema(described) for t in offered]
    msgs = [{"role": "user", "content": text}]
    if kind == "tool":
        msgs.append(assistant("", TOOL_THINK, thinking, tool_call(tool.name, args)))
    else:
        msgs += [{"role": "assistant", "content": "", "tool_calls": tool_call(tool.name, args)},
                 {"role": "tool", "content": rng.choice(tool.results)},
                 assistant(RESULT_ANSWER, RESULT_THINK, thinking)]  # fmt: skip
    return Example(with_system(rng, msgs) if rng.random() < 0.5 else msgs, schemas, thinking, kind)


def iter_examples(seed: int, n: int) -> Iterator[Example]:
    """``n`` transcripts drawn from a private ``random.Random(seed)``: same seed, same transcripts."""
    rng = random.Random(seed)
    for _ in range(n):
        yield make_example(rng)
