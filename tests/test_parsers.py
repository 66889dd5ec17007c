"""The family output formats (shim/engine/parsers/) behind the output router, cut at every split point.

Each case is one answer in a family's markup, fed to the router (shim/engine/output.py) in two pieces at
every character boundary, in three at every pair of them (short cases), and one character at a time: the
collected content, thinking and calls must be the same each time, and no markup may reach `content`.
The router meets the family through what it reads of a tokenizer (chat template, special tokens, think
tags, mlx-lm's parser fields); `Vocabulary` carries just that, the template markers of the real families.
The real tokenizers and the real server run the same answers in tests/test_parsers_server.py.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mlx_lm.tool_parsers import json_tools, mistral, qwen3_coder

from shim.engine.output import OutputRouter
from shim.engine.parsers import end_token_ids, find_family
from shim.engine.parsers.deepseek import parse_tool_calls
from shim.engine.parsers.harmony import harmony_name, parse_header
from shim.engine.types import Piece, ToolCall


def tool(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object", "properties": {}}}}


TOOLS = [tool("get_weather"), tool("get_time")]
PARIS = ToolCall("get_weather", {"city": "Paris"}, 0)
CET = ToolCall("get_time", {"zone": "CET"}, 1)


@dataclass
class Vocabulary:
    """What the router reads of a tokenizer, for one family."""

    chat_template: str
    special: tuple[str, ...] = ()
    think_start: str | None = None
    think_end: str | None = None
    prompt_text: str = ""  # what `decode` of the prompt gives (a template that opens the think block)
    parser: Any = None  # an mlx-lm tool_parsers module
    eos_token_ids: list[int] = field(default_factory=lambda: [0])

    def __post_init__(self) -> None:
        if self.parser is not None:
            self.tool_parser = self.parser.parse_tool_call
            self.tool_call_start = self.parser.tool_call_start
            self.tool_call_end = self.parser.tool_call_end

    def convert_tokens_to_ids(self, token: str) -> int | None:
        return self.special.index(token) + 1000 if token in self.special else None

    def convert_ids_to_tokens(self, token_id: int) -> str:
        return self.special[token_id - 1000]

    def decode(self, tokens: list[int]) -> str:
        return self.prompt_text


LLAMA3 = Vocabulary(
    '<|start_header_id|>... <|python_tag|> "parameters": ...', ("<|python_tag|>", "<|eom_id|>", "<|eot_id|>")
)
HARMONY = Vocabulary(
    "<|start|>{{ role }}<|channel|>final<|message|>", ("<|channel|>", "<|message|>", "<|call|>", "<|return|>")
)
DEEPSEEK_R1 = Vocabulary("{{'<｜Assistant｜>'}}<｜tool▁calls▁begin｜>...<think>\\n", think_start="<think>",
                         think_end="</think>", prompt_text="<｜Assistant｜><think>\n")  # fmt: skip
GRANITE = Vocabulary("<|start_of_role|>assistant<|end_of_role|><|tool_call|>")
PHI4_MINI = Vocabulary("<|system|>{{ content }}<|tool|>{{ tools }}<|/tool|><|end|>")
QWEN3 = Vocabulary("<tool_call>{{ tool_call.name }}</tool_call><think>", think_start="<think>", think_end="</think>",
                   parser=json_tools)  # fmt: skip
QWEN35 = Vocabulary("<tool_call>\n<function=", think_start="<think>", think_end="</think>",
                    prompt_text="<|im_start|>assistant\n<think>\n", parser=qwen3_coder)  # fmt: skip
MISTRAL = Vocabulary("[AVAILABLE_TOOLS][TOOL_CALLS]", parser=mistral)
# mlx-lm names Gemma 4's channel as its think tags: the family's format must read the channel, not the split
# A ChatML vocabulary without a family or an mlx-lm parser (SmolLM2's GGUF template renders no tools), served
# with Ollama's Go templates (tests/data/ollama_templates/, registry/smollm2_template.txt)
CHATML = Vocabulary("{% for message in messages %}<|im_start|>{{ message.content }}<|im_end|>{% endfor %}")
GO_TEMPLATES = Path(__file__).parent / "data" / "ollama_templates"
SMOLLM2_GO = (Path(__file__).parents[1] / "registry" / "smollm2_template.txt").read_text(encoding="utf-8")
QWEN25_GO, LLAMA31_GO, MISTRAL_GO = (
    (GO_TEMPLATES / f"{name}.gotmpl").read_text(encoding="utf-8") for name in ("qwen2.5", "llama3.1", "mistral")
)
GEMMA4 = Vocabulary("<|tool_call>call:{{ name }}<tool_call|><|turn>model\n<|channel>thought\n<channel|>",
                    ("<|channel>", "<channel|>", "<turn|>", "<|tool_response>"), think_start="<|channel>thought",
                    think_end="<channel|>")  # fmt: skip


@dataclass
class Case:
    vocabulary: Vocabulary
    text: str
    content: str = ""
    thinking: str = ""
    calls: tuple[ToolCall, ...] = ()
    think: bool = False
    tools: list[dict[str, Any]] | None = field(default_factory=lambda: TOOLS)
    template: str = ""  # the Go template that rendered the prompt (Modelfile TEMPLATE)


def smol(text: str, content: str = "", *, calls: tuple[ToolCall, ...] = (), tools: Any = TOOLS) -> Case:
    """An answer of a model served with the built-in smollm2's Go template."""
    return Case(CHATML, text, content, calls=calls, tools=tools, template=SMOLLM2_GO)


W = '{"name": "get_weather", "parameters": {"city": "Paris"}}'
T = '{"name": "get_time", "parameters": {"zone": "CET"}}'
WA = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
TA = '{"name": "get_time", "arguments": {"zone": "CET"}}'
H_THINK = "<|channel|>analysis<|message|>Need the weather.<|end|>"
H_CALL = "<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>"
DS_CALL = '<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{"city": "Paris"}\n```<｜tool▁call▁end｜>'
G_CALL = '<|tool_call>call:get_weather{city:<|"|>Paris<|"|>}<tool_call|>'
G_CALL2 = '<|tool_call>call:get_time{zone:<|"|>CET<|"|>}<tool_call|>'
DS_CALL2 = '<｜tool▁call▁begin｜>get_time<｜tool▁sep｜>{"zone": "CET"}<｜tool▁call▁end｜>'

CASES = {
    "llama3 json": Case(LLAMA3, f"  {W}", calls=(PARIS,)),
    "llama3 parallel": Case(LLAMA3, f"{W}; {T}", calls=(PARIS, CET)),
    "llama3 python_tag": Case(LLAMA3, f"<|python_tag|>{W}", calls=(PARIS,)),
    "llama3 builtin": Case(
        LLAMA3, '<|python_tag|>brave_search.call(query="mlx")', calls=(ToolCall("brave_search", {"query": "mlx"}, 0),)
    ),
    "llama3 json answer": Case(LLAMA3, ' {"name": "Bob", "age": 3}', content=' {"name": "Bob", "age": 3}'),
    "llama3 prose first": Case(LLAMA3, f"Sure: {W}", content=f"Sure: {W}"),
    "llama3 cut off": Case(LLAMA3, W[:30], content=W[:30]),
    "llama3 bad tag": Case(LLAMA3, "<|python_tag|>not a call(", content="<|python_tag|>not a call("),
    "llama3 no tools": Case(LLAMA3, W, content=W, tools=None),
    "llama3 prose after": Case(LLAMA3, f"{W}\nDone.", content="Done.", calls=(PARIS,)),
    "harmony answer": Case(
        HARMONY,
        f"{H_THINK}<|start|>assistant<|channel|>final<|message|>Sunny.",
        content="Sunny.",
        thinking="Need the weather.",
    ),
    "harmony call": Case(
        HARMONY, f'{H_THINK}{H_CALL}{{"city": "Paris"}}', thinking="Need the weather.", calls=(PARIS,)
    ),
    "harmony recipient first": Case(
        HARMONY,
        "<|channel|>analysis<|message|>Hm.<|end|><|start|>assistant to=functions.get_weather<|channel|>"
        'commentary json<|message|>{"city": "Paris"}',
        thinking="Hm.",
        calls=(PARIS,),
    ),
    "harmony analysis call": Case(
        HARMONY, '<|channel|>analysis to=functions.get_weather<|message|>{"city": "Paris"}', calls=(PARIS,)
    ),
    "harmony commentary": Case(
        HARMONY,
        "<|channel|>commentary<|message|>Checking.<|end|><|start|>assistant<|channel|>final<|message|>Done.",
        content="Checking.Done.",
    ),
    "harmony bad arguments": Case(HARMONY, f'{H_CALL}{{"city": ', content='{"city": '),
    "harmony no channel": Case(HARMONY, "Hello there", content="Hello there"),
    "harmony renamed": Case(
        HARMONY, f"{H_CALL}{{}}", calls=(ToolCall("get-weather", {}, 0),), tools=[tool("get-weather")]
    ),
    "deepseek r1 thinking": Case(
        DEEPSEEK_R1,
        "Let me think.\n</think>\n\nParis is sunny.",
        think=True,
        thinking="Let me think.",
        content="Paris is sunny.",
    ),
    "deepseek calls": Case(
        DEEPSEEK_R1,
        f"Hm.</think>\n\n<｜tool▁calls▁begin｜>{DS_CALL}\n{DS_CALL2}<｜tool▁calls▁end｜>",
        think=True,
        thinking="Hm.",
        calls=(PARIS, CET),
    ),
    "deepseek cut off": Case(
        DEEPSEEK_R1, f"<｜tool▁calls▁begin｜>{DS_CALL[:60]}", content=f"<｜tool▁calls▁begin｜>{DS_CALL[:60]}"
    ),
    "granite": Case(GRANITE, f"<|tool_call|>[{WA}, {TA}]", calls=(PARIS, CET)),
    "granite malformed": Case(GRANITE, '<|tool_call|>[{"name": 3}]', content='<|tool_call|>[{"name": 3}]'),
    "phi4-mini": Case(PHI4_MINI, f"functools[{WA}, {TA}]", calls=(PARIS, CET)),
    "phi4-mini prose": Case(PHI4_MINI, "use functools.partial", content="use functools.partial"),
    "qwen3": Case(
        QWEN3,
        f"<think>\nPlan.\n</think>\n\n<tool_call>\n{WA}\n</tool_call>\n<tool_call>\n{TA}\n</tool_call>",
        think=True,
        thinking="Plan.",
        calls=(PARIS, CET),
    ),
    "qwen3 calls alone": Case(
        QWEN3, f"<tool_call>\n{WA}\n</tool_call>\n<tool_call>\n{TA}\n</tool_call>\n", calls=(PARIS, CET)
    ),
    "qwen3 prose after calls": Case(
        QWEN3, f"<tool_call>\n{WA}\n</tool_call>\n Done.", content="\n Done.", calls=(PARIS,)
    ),
    "qwen3 malformed": Case(QWEN3, "<tool_call>\n{oops}\n</tool_call>", content="<tool_call>\n{oops}\n</tool_call>"),
    "qwen3.5": Case(
        QWEN35,
        "Plan.\n</think>\n\n<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n"
        "</function>\n</tool_call>",
        think=True,
        thinking="Plan.",
        calls=(PARIS,),
    ),
    "qwen3 stray call end": Case(QWEN3, "a </tool_call> b", content="a </tool_call> b"),
    "qwen3 stray call end thinking": Case(QWEN3, "a </tool_call> b", content="a </tool_call> b", think=True),
    "gemma4 thinking": Case(
        GEMMA4, "<|channel>thought\nPlan.\n<channel|>\n\nSunny.", think=True, thinking="Plan.", content="Sunny."
    ),
    "gemma4 think off drops the channel": Case(
        GEMMA4, "<|channel>thought\nPlan.\n<channel|>\n\nSunny.", content="Sunny."
    ),
    "gemma4 thinking and calls": Case(
        GEMMA4,
        f"<|channel>thought\nNeed both.<channel|>{G_CALL}{G_CALL2}",
        think=True,
        thinking="Need both.",
        calls=(PARIS, CET),
    ),
    "gemma4 unnamed channel": Case(GEMMA4, "<|channel>Hm<channel|> Done.", think=True, thinking="Hm", content="Done."),
    "gemma4 markup in thinking": Case(
        GEMMA4, f"<|channel>thought\nMaybe {G_CALL}?<channel|>Ok", think=True, thinking=f"Maybe {G_CALL}?", content="Ok"
    ),
    "gemma4 cut off thinking": Case(GEMMA4, "<|channel>thought\nHm \n", think=True, thinking="Hm"),
    "gemma4 malformed call": Case(
        GEMMA4,
        "<|tool_call>call:get_weather{city:Paris}<tool_call|>",
        content="<|tool_call>call:get_weather{city:Paris}<tool_call|>",
    ),
    "gemma4 stray call end": Case(
        GEMMA4, f"{G_CALL}<tool_call|>", calls=(ToolCall("get_weather", {"city": "Paris"}, 0),)
    ),
    "gemma4 call end in prose": Case(GEMMA4, "a <tool_call|> b", content="a <tool_call|> b"),
    "mistral v0.3": Case(MISTRAL, f"[TOOL_CALLS][{WA}, {TA}]", calls=(PARIS, CET)),
    "mistral tekken": Case(
        MISTRAL,
        '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}[TOOL_CALLS]get_time[ARGS]{"zone": "CET"}',
        calls=(PARIS, CET),
    ),
    "smollm2 go template": smol(f"<tool_call>[\n{WA},\n{TA}\n]</tool_call>", calls=(PARIS, CET)),
    "smollm2 go template twice": smol(
        f"<tool_call>[{WA}]</tool_call>\n<tool_call>[{TA}]</tool_call>\n", calls=(PARIS, CET)
    ),
    "smollm2 go template unclosed": smol(f"<tool_call>[{WA}]", calls=(PARIS,)),
    "smollm2 go template prose after": smol(f"<tool_call>[{WA}]</tool_call>\nDone.", "Done.", calls=(PARIS,)),
    "smollm2 go template malformed": smol("<tool_call>[{oops}]</tool_call>", "<tool_call>[{oops}]</tool_call>"),
    "smollm2 go template not a call": smol(
        '<tool_call>[{"name": 3}]</tool_call>', '<tool_call>[{"name": 3}]</tool_call>'
    ),
    "smollm2 go template empty": smol("<tool_call></tool_call>", "<tool_call></tool_call>"),
    "smollm2 go template stray end": smol("a </tool_call> b", "a </tool_call> b"),
    "smollm2 go template answer": smol("Sunny.", "Sunny."),
    "smollm2 go template no tools": smol(
        f"<tool_call>[{WA}]</tool_call>", f"<tool_call>[{WA}]</tool_call>", tools=None
    ),
    "qwen2.5 go template": Case(
        CHATML,
        f"<tool_call>\n{WA}\n</tool_call>\n<tool_call>\n{TA}\n</tool_call>",
        calls=(PARIS, CET),
        template=QWEN25_GO,
    ),
    "llama3.1 go template": Case(CHATML, f" {W}", calls=(PARIS,), template=LLAMA31_GO),
    "llama3.1 go template prose first": Case(CHATML, f"Sure: {W}", content=f"Sure: {W}", template=LLAMA31_GO),
    "llama3.1 go template json answer": Case(
        CHATML, '{"name": "Bob", "age": 3}', content='{"name": "Bob", "age": 3}', template=LLAMA31_GO
    ),
    "mistral go template": Case(CHATML, f"[TOOL_CALLS] [{WA}, {TA}]</s>", calls=(PARIS, CET), template=MISTRAL_GO),
    "bare list go template": Case(
        CHATML,
        f" [{WA}]",
        calls=(PARIS,),
        template="{{ range .Messages }}{{ if .ToolCalls }}[{{ range .ToolCalls }}{{ . }}{{ end }}]{{ end }}{{ end }}",
    ),
    # a family of ours keeps its format, as a built-in PARSER wins over Ollama's template tag
    "llama3 family over go template": Case(
        LLAMA3, f"<tool_call>[{WA}]</tool_call>", content=f"<tool_call>[{WA}]</tool_call>", template=SMOLLM2_GO
    ),
}


def run(case: Case, pieces: list[str]) -> list[Piece]:
    out: list[Piece] = []
    router = OutputRouter(
        case.vocabulary, [1], think=case.think, tools=case.tools, template=case.template, stops=(), emit=out.append
    )
    for piece in pieces:
        assert not router.feed(piece)
    router.finish()
    return out


def check(case: Case, out: list[Piece], where: object) -> None:
    assert "".join(p.content for p in out) == case.content, where
    assert "".join(p.thinking for p in out) == case.thinking, where
    assert tuple(c for p in out for c in p.tool_calls) == case.calls, where


@pytest.mark.parametrize("name", CASES)
def test_every_split_point(name: str) -> None:
    case = CASES[name]
    text = case.text
    check(case, run(case, [text]), "whole")
    check(case, run(case, list(text)), "one character at a time")
    for i in range(len(text) + 1):
        check(case, run(case, [text[:i], text[i:]]), i)
    if len(text) <= 60:
        for i, j in itertools.combinations(range(len(text) + 1), 2):
            check(case, run(case, [text[:i], text[i:j], text[j:]]), (i, j))


def test_family_choice_and_end_tokens() -> None:
    def has(vocabulary: Vocabulary) -> Any:
        return lambda token: token in vocabulary.special

    names = [(f.name if (f := find_family(v.chat_template, has(v))) else None) for v in
             (LLAMA3, HARMONY, DEEPSEEK_R1, GRANITE, PHI4_MINI, QWEN3, MISTRAL, GEMMA4)]  # fmt: skip
    assert names == ["llama3", "harmony", "deepseek", "granite", "phi4-mini", None, None, "gemma4"]
    assert find_family("", lambda t: t in ("<|channel|>", "<|message|>")).name == "harmony"  # type: ignore[union-attr]
    assert end_token_ids(LLAMA3) == {1001, 1002}  # <|eom_id|> and <|eot_id|>
    assert end_token_ids(HARMONY) == {1002, 1003}  # <|call|> and <|return|>
    assert end_token_ids(QWEN3) == frozenset()
    assert end_token_ids(GEMMA4) == {1002, 1003}  # <turn|> and <|tool_response>


def test_harmony_header_and_names_as_ollama() -> None:
    assert parse_header("assistant<|channel|>commentary to=functions.f <|constrain|>json") == (
        "commentary",
        "functions.f",
    )
    assert parse_header("to=functions.f<|channel|>commentary") == ("commentary", "functions.f")
    assert parse_header("assistant<|channel|>final") == ("final", "")
    assert parse_header("") == ("", "")
    assert [harmony_name(n) for n in ("get-weather", "a.b c", "9lives", "ü!", "", "browser.search")] == [
        "get_weather", "a_b_c", "_9lives", "ü", "unnamed", "browser.search"]  # fmt: skip


def test_deepseek_parse_refuses_what_is_not_a_call() -> None:
    assert parse_tool_calls(DS_CALL + DS_CALL2) == [
        {"name": "get_weather", "arguments": {"city": "Paris"}},
        {"name": "get_time", "arguments": {"zone": "CET"}},
    ]
    for bad in ("", "get_weather", f"{DS_CALL}junk", "<｜tool▁call▁begin｜>f{}<｜tool▁call▁end｜>"):
        with pytest.raises(ValueError):
            parse_tool_calls(bad)


def test_stop_string_inside_harmony_text_ends_the_answer() -> None:
    """Harmony's channels are answer text, so stop strings see them as Ollama's runner does."""
    out: list[Piece] = []
    router = OutputRouter(HARMONY, [1], think=False, tools=TOOLS, stops=("STOP",), emit=out.append)
    assert not router.feed("<|channel|>final<|message|>Hello ")
    assert router.feed("world STOP more")
    router.stopped()
    assert "".join(p.content for p in out) == "Hello world "
