"""Ollama prompt templates rendered as Ollama renders them.

Expected outputs marked "Ollama" are copied from ollama/ollama's template/template_test.go and
template/testdata/ (with the template versions those files were written for); the rest follow Go
text/template semantics and Ollama's template.Execute as read in its source.
"""

from __future__ import annotations

from datetime import date

import pytest

from shim.gotemplate import Template, TemplateError, Values, chat_values, generate_values


def render(text: str, values: Values) -> str:
    return Template.parse(text).execute(values)


def msgs(*pairs: tuple[str, str]) -> list[dict]:
    return [{"role": role, "content": content} for role, content in pairs]


def chat(text: str, *pairs: tuple[str, str], **kwargs: object) -> str:
    return render(text, chat_values(msgs(*pairs), **kwargs))


# Mentioning .Messages selects Ollama's messages path; templates that do not are rendered per turn.
USES_MESSAGES = "{{ with .Messages }}{{ end }}"


# The recorded tiny model's TEMPLATE (tests/conftest.py): a "legacy" template, rendered per turn.
TINY = (
    "{{ if .System }}<|system|>\n{{ .System }}</s>\n{{ end }}{{ if .Prompt }}<|user|>\n{{ .Prompt }}</s>\n"
    "{{ end }}<|assistant|>\n{{ .Response }}</s>\n"
)


# ------------------------------------------------------------------------------------ legacy templates


def test_legacy_generate_cuts_after_response() -> None:
    values = generate_values("Why is the sky blue?", model_system="You are a tiny test model.")
    assert render(TINY, values) == (
        "<|system|>\nYou are a tiny test model.</s>\n<|user|>\nWhy is the sky blue?</s>\n<|assistant|>\n"
    )


def test_legacy_generate_request_system_overrides_model_system() -> None:
    values = generate_values("hi", system="Be brief.", model_system="You are a tiny test model.")
    assert render(TINY, values) == "<|system|>\nBe brief.</s>\n<|user|>\nhi</s>\n<|assistant|>\n"
    assert render(TINY, generate_values("hi")) == "<|user|>\nhi</s>\n<|assistant|>\n"


def test_legacy_multi_turn_renders_each_turn_and_cuts_only_the_last() -> None:
    out = chat(TINY, ("system", "S"), ("user", "U1"), ("assistant", "A1"), ("user", "U2"))
    assert out == "<|system|>\nS</s>\n<|user|>\nU1</s>\n<|assistant|>\nA1</s>\n<|user|>\nU2</s>\n<|assistant|>\n"


def test_legacy_trailing_assistant_message_is_continued() -> None:
    out = chat(TINY, ("user", "Why?"), ("assistant", "Because"))
    assert out == "<|user|>\nWhy?</s>\n<|assistant|>\nBecause"


def test_legacy_collation_merges_roles_starts_turns_at_system_and_ignores_tools() -> None:
    out = chat(
        TINY,
        ("user", "U1"),
        ("assistant", "A1"),
        ("system", "S2"),
        ("user", "U2"),
        ("user", "U3"),
        ("tool", "ignored"),
    )
    first = "<|user|>\nU1</s>\n<|assistant|>\nA1</s>\n"
    assert out == first + "<|system|>\nS2</s>\n<|user|>\nU2\n\nU3</s>\n<|assistant|>\n"


def test_template_without_response_gets_one_appended() -> None:
    # Ollama's Parse appends {{ .Response }} when neither .Messages nor .Response appears.
    assert chat("{{ .System }} {{ .Prompt }}", ("user", "hi"), ("assistant", "there")) == " hithere"


def test_cut_drops_a_response_pipeline_that_loses_its_arguments() -> None:
    # Ollama's deleteNode removes `print` after the cut, and with it the whole action.
    assert chat("{{ .Prompt }}{{ .Response | print }}END", ("user", "hi"), ("assistant", "yo")) == "hi"


def test_cut_inside_a_branch_with_else_is_an_error_as_in_ollama() -> None:
    with pytest.raises(TemplateError, match="cannot cut"):
        chat("{{ if .Prompt }}{{ .Response }}{{ else }}x{{ end }}", ("user", "hi"))


# ------------------------------------------------------- Ollama template_test.go: TestExecuteWithMessages

MISTRAL_SYSTEM = "[INST] {{ if .System }}{{ .System }}\n\n{{ end }}"
EXECUTE_WITH_MESSAGES = [
    (
        "mistral",
        [
            MISTRAL_SYSTEM + "{{ .Prompt }}[/INST] ",
            MISTRAL_SYSTEM + "{{ .Prompt }}[/INST] {{ .Response }}",
            MISTRAL_SYSTEM + '\n{{- range .Messages }}\n{{- if eq .Role "user" }}{{ .Content }}[/INST] '
            '{{ else if eq .Role "assistant" }}{{ .Content }}[INST] {{ end }}\n{{- end }}',
        ],
        msgs(("user", "Hello friend!"), ("assistant", "Hello human!"), ("user", "What is your name?")),
        "[INST] Hello friend![/INST] Hello human![INST] What is your name?[/INST] ",
    ),
    (
        "mistral system",
        [
            MISTRAL_SYSTEM + "{{ .Prompt }}[/INST] ",
            MISTRAL_SYSTEM + "{{ .Prompt }}[/INST] {{ .Response }}",
            MISTRAL_SYSTEM + '\n{{- range .Messages }}\n{{- if eq .Role "user" }}{{ .Content }}[/INST] '
            '{{ else if eq .Role "assistant" }}{{ .Content }}[INST] {{ end }}\n{{- end }}',
        ],
        msgs(
            ("system", "You are a helpful assistant!"),
            ("user", "Hello friend!"),
            ("assistant", "Hello human!"),
            ("user", "What is your name?"),
        ),
        "[INST] You are a helpful assistant!\n\nHello friend![/INST] Hello human![INST] What is your name?[/INST] ",
    ),
    (
        "mistral assistant",
        [
            "[INST] {{ .Prompt }}[/INST] ",
            "[INST] {{ .Prompt }}[/INST] {{ .Response }}",
            '\n{{- range $i, $m := .Messages }}\n{{- if eq .Role "user" }}[INST] {{ .Content }}[/INST] '
            '{{ else if eq .Role "assistant" }}{{ .Content }}{{ end }}\n{{- end }}',
        ],
        msgs(
            ("user", "Hello friend!"),
            ("assistant", "Hello human!"),
            ("user", "What is your name?"),
            ("assistant", "My name is Ollama and I"),
        ),
        "[INST] Hello friend![/INST] Hello human![INST] What is your name?[/INST] My name is Ollama and I",
    ),
    (
        "chatml",
        [
            "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
            "{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}"
            "<|im_start|>assistant\n{{ .Response }}<|im_end|>\n",
            "\n{{- range $index, $_ := .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n"
            "{{ end }}<|im_start|>assistant\n",
        ],
        msgs(
            ("system", "You are a helpful assistant!"),
            ("user", "Hello friend!"),
            ("assistant", "Hello human!"),
            ("user", "What is your name?"),
        ),
        "<|im_start|>system\nYou are a helpful assistant!<|im_end|>\n"
        "<|im_start|>user\nHello friend!<|im_end|>\n"
        "<|im_start|>assistant\nHello human!<|im_end|>\n"
        "<|im_start|>user\nWhat is your name?<|im_end|>\n"
        "<|im_start|>assistant\n",
    ),
]


@pytest.mark.parametrize(
    ("template", "messages", "expected"),
    [pytest.param(t, m, e, id=f"{name}-{i}") for name, ts, m, e in EXECUTE_WITH_MESSAGES for i, t in enumerate(ts)],
)
def test_ollama_execute_with_messages(template: str, messages: list[dict], expected: str) -> None:
    assert render(template, Values(messages=messages)) == expected


FIM = "{{- if .Suffix }}<PRE> {{ .Prompt }} <SUF>{{ .Suffix }} <MID>\n{{- else }}{{ .Prompt }}\n{{- end }}"


def test_ollama_execute_with_suffix() -> None:
    assert render(FIM, Values(messages=msgs(("user", "hello")))) == "hello"
    assert render(FIM, generate_values("def add(", suffix="return x")) == "<PRE> def add( <SUF>return x <MID>"


# ----------------------------------------------------------- Ollama template_test.go: TestTemplate (testdata)

LLAMA2_CHAT = """{{- $system := "" }}[INST] {{ range .Messages }}
{{- if eq .Role "system" }}
{{- if not $system }}{{ $system = .Content }}
{{- else }}{{ $system = printf "%s\\n\\n%s" $system .Content }}
{{- end }}
{{- else if eq .Role "user" }}<<SYS>>
{{- if $system }}
{{ $system }}
{{ $system = "" }}
{{- end }}<</SYS>>

{{ .Content }} [/INST]
{{- else if eq .Role "assistant" }} {{ .Content }}</s><s>[INST] {{ end }}
{{- end }}"""
LLAMA3_INSTRUCT = """{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>

{{ .Content }}<|eot_id|>
{{- end }}<|start_header_id|>assistant<|end_header_id|>

"""
CHATML = """{{- range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
"""

HELLO = ("user", "Hello, how are you?")
GREAT = ("assistant", "I'm doing great. How can I help you today?")
SHOW = ("user", "I'd like to show off how chat templating works!")
HELPFUL = ("system", "You are a helpful assistant.")
TESTDATA = [
    ("llama2-user", LLAMA2_CHAT, (HELLO,), "[INST] <<SYS>><</SYS>>\n\nHello, how are you? [/INST]"),
    (
        "llama2-user-assistant-user",
        LLAMA2_CHAT,
        (HELLO, GREAT, SHOW),
        "[INST] <<SYS>><</SYS>>\n\nHello, how are you? [/INST] I'm doing great. How can I help you today?"
        "</s><s>[INST] <<SYS>><</SYS>>\n\nI'd like to show off how chat templating works! [/INST]",
    ),
    (
        "llama2-system-user-assistant-user",
        LLAMA2_CHAT,
        (HELPFUL, HELLO, GREAT, SHOW),
        "[INST] <<SYS>>\nYou are a helpful assistant.\n<</SYS>>\n\nHello, how are you? [/INST] "
        "I'm doing great. How can I help you today?</s><s>"
        "[INST] <<SYS>><</SYS>>\n\nI'd like to show off how chat templating works! [/INST]",
    ),
    (
        "llama3-user-assistant-user",
        LLAMA3_INSTRUCT,
        (HELLO, GREAT, SHOW),
        "<|start_header_id|>user<|end_header_id|>\n\nHello, how are you?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
        "I'm doing great. How can I help you today?<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\n"
        "I'd like to show off how chat templating works!<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    ),
    (
        "llama3-system-user-assistant-user",
        LLAMA3_INSTRUCT,
        (HELPFUL, HELLO, GREAT, SHOW),
        "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHello, how are you?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
        "I'm doing great. How can I help you today?<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\n"
        "I'd like to show off how chat templating works!<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    ),
    (
        "chatml-user-assistant-user",
        CHATML,
        (HELLO, GREAT, SHOW),
        "<|im_start|>user\nHello, how are you?<|im_end|>\n"
        "<|im_start|>assistant\nI'm doing great. How can I help you today?<|im_end|>\n"
        "<|im_start|>user\nI'd like to show off how chat templating works!<|im_end|>\n"
        "<|im_start|>assistant\n",
    ),
    (
        "chatml-system-user-assistant-user",
        CHATML,
        (HELPFUL, HELLO, GREAT, SHOW),
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nHello, how are you?<|im_end|>\n"
        "<|im_start|>assistant\nI'm doing great. How can I help you today?<|im_end|>\n"
        "<|im_start|>user\nI'd like to show off how chat templating works!<|im_end|>\n"
        "<|im_start|>assistant\n",
    ),
]


@pytest.mark.parametrize(
    ("template", "messages", "expected"), [pytest.param(*case[1:], id=case[0]) for case in TESTDATA]
)
def test_ollama_testdata(template: str, messages: tuple[tuple[str, str], ...], expected: str) -> None:
    assert chat(template, *messages) == expected


# --------------------------------------------------------------------------- Ollama TestCollate (ported)

COLLATE = (
    "{{ .System }}|{{ range .Messages }}{{ .Role }}={{ .Content }}{{ with .ToolName }}({{ . }}){{ end }};{{ end }}"
)


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        (msgs(("user", "Hello"), ("user", "How are you?")), "|user=Hello\n\nHow are you?;"),
        (
            [
                {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
                {"role": "tool", "content": "72F", "tool_name": "get_temperature"},
            ],
            "|tool=sunny(get_weather);tool=72F(get_temperature);",
        ),
        (
            msgs(
                ("system", "You are helpful"),
                ("user", "Hello"),
                ("assistant", "Hi there!"),
                ("user", "What's up?"),
            )
            + [
                {"role": "tool", "content": "sunny", "tool_name": "w"},
                {"role": "tool", "content": "72F", "tool_name": "t"},
            ]
            + msgs(("user", "Thanks")),
            "You are helpful|system=You are helpful;user=Hello;assistant=Hi there!;"
            "user=What's up?;tool=sunny(w);tool=72F(t);user=Thanks;",
        ),
        (
            msgs(("system", "A"), ("system", "B"), ("user", "u"), ("system", "C")),
            "A\n\nB\n\nC|system=A\n\nB;user=u;system=C;",
        ),
    ],
)
def test_ollama_collate(messages: list[dict], expected: str) -> None:
    assert render(COLLATE, Values(messages=messages)) == expected


# ------------------------------------------------------------------ tools (Ollama testdata/command-r.gotmpl)

PREAMBLE = (
    "# Safety Preamble\nThe instructions in this section override those in the task description and "
    "style guide sections. Don't answer questions that are harmful or immoral.\n\n# System Preamble\n"
    "## Basic Rules\nYou are a powerful conversational AI trained by Cohere to help people. You are "
    "augmented by a number of tools, and your job is to use and consume the output of these tools to best "
    "help the user. You will see a conversation history between yourself and a user, ending with an "
    "utterance from the user. You will then see a specific instruction instructing you what kind of "
    "response to generate. When you answer the user's requests, you cite your sources in your answers, "
    "according to those instructions."
)
COMMAND_R = (
    """{{- if or .Tools .System }}<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>
{{- if .Tools }}"""
    + PREAMBLE
    + """

{{ if .System }}# User Preamble
{{ .System }}
{{- end }}

## Available Tools
Here is a list of tools that you have available to you:
{{- range .Tools }}

```python
def {{ .Function.Name }}(
{{- range $name, $property := .Function.Parameters.Properties }}\
{{ $name }}: {{ $property.Type }}, {{ end }}) -> List[Dict]:
    '''{{ .Function.Description }}

{{- if .Function.Parameters.Properties }}

    Args:
{{- range $name, $property := .Function.Parameters.Properties }}
        {{ $name }} ({{ $property.Type }}): {{ $property.Description }}
{{- end }}
{{- end }}
    '''
    pass
```
{{- end }}
{{- else if .System }}{{ .System }}
{{- end }}<|END_OF_TURN_TOKEN|>
{{- end }}
{{- range .Messages }}
{{- if eq .Role "system" }}
{{- continue }}
{{- end }}<|START_OF_TURN_TOKEN|>
{{- if eq .Role "user" }}<|USER_TOKEN|>{{ .Content }}
{{- else if eq .Role "assistant" }}<|CHATBOT_TOKEN|>
{{- if .Content }}{{ .Content }}
{{- else if .ToolCalls }}
Action: ```json
[
{{- range .ToolCalls }}
    {
        "tool_name": "{{ .Function.Name }}",
        "parameters": {{ .Function.Arguments }}
    }
{{- end }}
]```
{{- end }}
{{- else if eq .Role "tool" }}<|SYSTEM_TOKEN|><results>
console_output: {{ .Content }}
</results>
{{- end }}<|END_OF_TURN_TOKEN|>
{{- end }}<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>
"""
)
# (The Ollama template also prompts for an `Action:` after user turns when tools exist; that part is not
# exercised by these testdata files and is left out.)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get current weather information for a location",
        "parameters": {
            "type": "object",
            "required": ["location"],
            "additionalProperties": False,
            "properties": {
                "unit": {
                    "type": "string",
                    "enum": ["celsius", "fahrenheit"],
                    "description": "The unit of temperature to use",
                },
                "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
            },
        },
    },
}
CALL = {
    "role": "assistant",
    "content": "",
    "tool_calls": [{"function": {"name": "get_weather", "arguments": {"location": "San Francisco, CA"}}}],
}
END = "<|END_OF_TURN_TOKEN|><|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>\n"


def test_ollama_command_r_tools_single() -> None:
    assert render(COMMAND_R, Values(messages=[], tools=[WEATHER])) == (
        "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>"
        + PREAMBLE
        + "\n\n\n\n## Available Tools\nHere is a list of tools that you have available to you:\n\n```python\n"
        "def get_weather(location: string, unit: string, ) -> List[Dict]:\n"
        "    '''Get current weather information for a location\n\n    Args:\n"
        "        location (string): The city and state, e.g. San Francisco, CA\n"
        "        unit (string): The unit of temperature to use\n    '''\n    pass\n```" + END
    )


def test_ollama_command_r_tools_single_call_and_result() -> None:
    assert render(COMMAND_R, Values(messages=[CALL])) == (
        "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>\nAction: ```json\n[\n    {\n"
        '        "tool_name": "get_weather",\n'
        '        "parameters": {"location":"San Francisco, CA"}\n    }\n]```' + END
    )
    result = '{"temperature": 22, "condition": "Sunny", "humidity": 45, "wind_speed": 10}'
    expected = f"<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|><results>\nconsole_output: {result}\n</results>" + END
    assert render(COMMAND_R, Values(messages=msgs(("tool", result)))) == expected
    system = "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>S<|END_OF_TURN_TOKEN|>"  # system messages hit {{ continue }}
    assert render(COMMAND_R, Values(messages=msgs(("system", "S"), ("tool", result)))) == system + expected


def test_tools_print_as_go_json() -> None:
    # Struct fields in Go declaration order, property names sorted, unknown schema keys dropped.
    properties = (
        '{"location":{"type":"string","description":"The city and state, e.g. San Francisco, CA"},'
        '"unit":{"type":"string","description":"The unit of temperature to use",'
        '"enum":["celsius","fahrenheit"]}}'
    )
    function = (
        '{"name":"get_weather","description":"Get current weather information for a location","parameters":'
        f'{{"type":"object","required":["location"],"properties":{properties}}}}}'
    )
    tool = f'{{"type":"function","function":{function}}}'
    template = (
        USES_MESSAGES + "{{ range .Tools }}{{ . }}|{{ .Function }}|{{ .Function.Parameters.Properties }}{{ end }}"
    )
    assert chat(template, ("user", "hi"), tools=[WEATHER]) == f"{tool}|{function}|{properties}"
    assert (
        chat(USES_MESSAGES + "{{ $.Tools }} {{ json .Tools }}", ("user", "hi"), tools=[WEATHER]) == f"[{tool}] [{tool}]"
    )


def test_tool_call_arguments_are_go_values() -> None:
    call = {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "function": {
                    "name": "f",
                    "arguments": {
                        "x": 0.5,
                        "n": 1000000,
                        "s": "<a&b>",
                        "l": [1, "a"],
                        "m": {"k": True},
                        "big": 1e21,
                        "tiny": 1e-7,
                    },
                }
            }
        ],
    }
    template = (
        "{{ range .Messages }}{{ range .ToolCalls }}{{ .Function.Arguments }}\n"
        "{{ range $k, $v := .Function.Arguments }}{{ $k }}={{ $v }};{{ end }}{{ end }}{{ end }}"
    )
    assert render(template, Values(messages=[call])) == (
        '{"big":1e+21,"l":[1,"a"],"m":{"k":true},"n":1000000,"s":"\\u003ca\\u0026b\\u003e",'
        '"tiny":1e-7,"x":0.5}\n'
        "big=1e+21;l=[1 a];m=map[k:true];n=1e+06;s=<a&b>;tiny=1e-07;x=0.5;"
    )


def test_tool_call_without_arguments_prints_empty_object_and_messages_marshal_with_go_names() -> None:
    call = {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "function": {"name": "f"}}]}
    assert (
        render(
            "{{ range .Messages }}{{ range .ToolCalls }}{{ .Function.Arguments }}{{ end }}{{ end }}",
            Values(messages=[call]),
        )
        == "{}"
    )
    assert render("{{ json .Messages }}", Values(messages=msgs(("user", "hi")))) == (
        '[{"Role":"user","Content":"hi","Thinking":"","Images":null,"ToolCalls":null,"ToolName":"","ToolCallID":""}]'
    )


def test_to_typescript_type() -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "f",
            "parameters": {
                "type": "object",
                "properties": {
                    "a": {"type": "string"},
                    "b": {"type": ["integer", "null"]},
                    "c": {"type": "array"},
                    "d": {"anyOf": [{"type": "boolean"}, {"type": "object"}]},
                    "e": {},
                },
            },
        },
    }
    template = (
        USES_MESSAGES + "{{ range .Tools }}{{ range $k, $v := .Function.Parameters.Properties }}"
        "{{ $k }}: {{ toTypeScriptType $v }}; {{ end }}{{ end }}"
    )
    assert chat(template, ("user", "x"), tools=[tool]) == (
        "a: string; b: number | null; c: any[]; d: boolean | Record<string, any>; e: any; "
    )


def test_missing_property_is_go_zero_struct() -> None:
    # templateProperties is map[string]ToolProperty: a missing key yields a zero struct, which is true.
    template = (
        USES_MESSAGES + "{{ range .Tools }}{{ with .Function.Parameters.Properties.nope }}[{{ . }}]{{ end }}{{ end }}"
    )
    assert chat(template, ("user", "x"), tools=[WEATHER]) == "[{[]  <nil>  [] <nil>}]"


def test_message_printing_follows_go_pointer_rules() -> None:
    template = "{{ index .Messages 0 }}|{{ index .Messages 0 | print }}"
    assert chat(template, ("user", "hi")) == "{user hi  [] []  }|&{user hi  [] []  }"
    with pytest.raises(TemplateError, match="memory addresses"):
        chat("{{ .Messages }}", ("user", "hi"))


# ------------------------------------------------------------------------------------- Go semantics


def test_trim_markers_and_comments() -> None:
    template = "<{{ range .Messages }}  \n {{- .Content -}} \n  |{{ end }}>{{/* gone */}} {{- /* gone */ -}} ."
    assert chat(template, ("user", "a"), ("assistant", "b")) == "<a|b|>."
    assert render("a {{-3}}", generate_values("x")) == "a -3"  # "{{-" needs a following space to trim


def test_range_variables_dollar_and_slice() -> None:
    template = (
        "{{- range $i, $m := .Messages }}{{ $last := eq (len (slice $.Messages $i)) 1 }}"
        "{{ $i }}:{{ $m.Role }}{{ if $last }}!{{ end }} {{ end }}{{ with $.System }}[{{ . }}]{{ end }}"
    )
    assert chat(template, ("system", "S"), ("user", "u")) == "0:system 1:user! [S]"


def test_else_if_chain_with_and_range_else() -> None:
    template = (
        '{{ range .Messages }}{{ if eq .Role "user" }}U{{ else if eq .Role "assistant" "tool" }}A'
        "{{ else }}?{{ end }}{{ end }}|{{ with .Tools }}tools{{ else with .System }}{{ . }}"
        "{{ else }}none{{ end }}|{{ range .Tools }}x{{ else }}empty{{ end }}"
    )
    assert chat(template, ("system", "S"), ("user", "u"), ("assistant", "a"), ("tool", "t")) == "?UAA|S|empty"
    assert chat(template, ("user", "u")) == "U|none|empty"


def test_break_continue_and_assignment_to_outer_variable() -> None:
    template = (
        "{{ $n := 0 }}{{ range $i, $_ := .Messages }}{{ if eq $i 1 }}{{ continue }}{{ end }}"
        "{{ if eq $i 3 }}{{ break }}{{ end }}{{ $n = $i }}{{ .Content }}{{ end }}/{{ $n }}"
    )
    assert chat(template, ("user", "a"), ("assistant", "b"), ("user", "c"), ("assistant", "d")) == "ac/2"


def test_logic_and_comparison_functions() -> None:
    template = (
        '{{ or .Prompt "none" }} {{ and .System (index .Messages 5) }}|{{ not .Tools }} {{ ne 1 2 }} '
        '{{ lt (len .Messages) 3 }} {{ le 2 2 }} {{ gt "b" "a" }} {{ ge 1.5 2.5 }} '
        "{{ (index .Messages 0).Content | print }}"
    )
    assert chat(template, ("user", "hi")) == "none |true true true true true false hi"


def test_print_printf_println_and_len_counts_bytes() -> None:
    template = (
        '{{ print 1 2 "a" 3 }}|{{ printf "%s=%d %v %t %%" .System 3 1.5 true }}|{{ println "x" 1 }}{{ len .System }}'
    )
    assert chat(template, ("system", "héllo"), ("user", "u")) == "1 2a3|héllo=3 1.5 true %|x 1\n6"


def test_json_is_compact_and_html_safe_like_go() -> None:
    content = '<b>&"q"\n\t\x01\u2028é'
    assert chat("{{ json .System }}", ("system", content)) == '"\\u003cb\\u003e\\u0026\\"q\\"\\n\\t\\u0001\\u2028é"'
    assert chat("{{ json .Suffix }} {{ json 3 }} {{ json 2.50 }}", ("user", "u")) == "null 3 2.5"


def test_missing_value_prints_no_value_and_think_fields() -> None:
    template = "{{ .Prompt }}|{{ .Think }} {{ .ThinkLevel }} {{ .IsThinkSet }}|{{ len .Messages }}"
    assert chat(template, ("user", "u")) == "<no value>|false  false|1"
    assert chat(template, ("user", "u"), think=True) == "<no value>|true medium true|1"
    assert chat(template, ("user", "u"), think="high") == "<no value>|true high true|1"
    assert chat(template, ("user", "u"), think=False) == "<no value>|false  true|1"


def test_current_date() -> None:
    assert render("{{ currentDate }}", generate_values("x")) == date.today().isoformat()


def test_chat_values_add_modelfile_system_and_messages() -> None:
    template = "{{ range .Messages }}{{ .Role }}:{{ .Content }};{{ end }}"
    model = {"model_system": "MS", "model_messages": msgs(("user", "mu"), ("assistant", "ma"))}
    assert chat(template, ("user", "hi"), **model) == "system:MS;user:mu;assistant:ma;user:hi;"
    assert chat(template, ("system", "own"), ("user", "hi"), **model) == "user:mu;assistant:ma;system:own;user:hi;"
    values = generate_values("hi", model_system="MS", model_messages=msgs(("user", "mu")))
    assert render(template, values) == "system:MS;user:mu\n\nhi;"


# -------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("a\n{{ foo }}", 'template: :2: function "foo" not defined'),
        ('{{ define "x" }}{{ end }}', "template: :1: unsupported template construct: {{define}}"),
        ('{{ template "x" . }}', "unsupported template construct: {{template}}"),
        ('{{ block "x" . }}{{ end }}', "unsupported template construct: {{block}}"),
        ("{{ html .System }}", 'unsupported template construct: function "html"'),
        ("{{ .Foo }}", "unknown field .Foo; Ollama templates provide .System"),
        ("{{ range .Messages }}{{ $.Document }}{{ end }}", "unknown field .Document"),
        ("{{ $x }}", 'undefined variable "$x"'),
        ("{{ continue }}", "{{continue}} outside {{range}}"),
        ("{{ .System", "unclosed action"),
        ("{{ if .System }}x", "unexpected EOF"),
        ("{{ end }}", "unexpected {{end}}"),
        ("{{ 'a' }}", "unsupported template construct: character constant"),
        ("{{ # }}", "unrecognized character in action"),
        ("{{ }}", "missing value for command"),
    ],
)
def test_parse_errors(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        Template.parse(template)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            "{{ range .Messages }}{{ .Foo }}{{ end }}",
            'template: :1:24: executing "" at <.Foo>: can\'t evaluate field Foo in type *template.templateMessage',
        ),
        ('{{ eq (len .Messages) "1" }}', "error calling eq: incompatible types for comparison"),
        ('{{ printf "%x" 1 }}', "unsupported template construct: printf verb %x"),
        ("{{ index .Messages 3 }}", "error calling index: index out of range: 3"),
        ("{{ not }}", "wrong number of args for not: want 1 got 0"),
        ("{{ range .System }}{{ end }}", "range can't iterate over S"),
    ],
)
def test_execute_errors(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        chat(template + USES_MESSAGES, ("system", "S"))
    assert message in str(info.value)
