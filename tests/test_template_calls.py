"""The tool-call tag read off an Ollama Go template (shim/engine/parsers/template_calls.py), against Ollama's
own table (tools/template_test.go TestParseTag, v0.24.0) and the library templates of qwen2.5, llama3.1,
mistral and smollm2 (tests/data/ollama_templates/README.md says where each comes from). What the router
then makes of answers in each template's markup is in tests/test_parsers.py, the real server's in
tests/test_parsers_server.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shim.engine.parsers.template_calls import template_tags

TEMPLATES = Path(__file__).parent / "data" / "ollama_templates"
SMOLLM2 = Path(__file__).parents[1] / "registry" / "smollm2_template.txt"

# Ollama's TestParseTag cases: (template, tag). Ollama parses them alone, with `.ToolCalls` on the root; ours
# are wrapped in `{{ range .Messages }}` (our parser refuses root fields a template is never given, and the
# search walks into a range exactly as into the root list).
OLLAMA_CASES = [
    ("{{if .ToolCalls}}{{end}}", "{"),
    ("{{if .ToolCalls}}{{range .ToolCalls}}{{ . }}{{end}}{{end}}", "{"),
    ("{{if .ToolCalls}}```json\n{{end}}", "```json"),
    ("{{if .ToolCalls}}[{{range .ToolCalls}}{{ . }}{{end}}]{{end}}", "["),
    ("{{if .ToolCalls}}\n [ {{range .ToolCalls}}{{ . }}{{end}}]{{end}}", "["),
    ("{{if .ToolCalls}}{{range .ToolCalls}}{{ . }}{{end}}]{{end}}", "{"),
    ("{{if .ToolCalls}} {{range .ToolCalls}}{{ . }}{{end}}{{end}}", "{"),
    ("{{if .ToolCalls}}{{range .ToolCalls}}\n{{ . }}\n{{end}}{{end}}", "{"),
    ('{{if .ToolCalls}}{{range .ToolCalls}}{"name": "{{ .Function.Name }}", "arguments": '
     "{{ .Function.Arguments }}}{{end}}{{end}}", "{"),
    ('{{if .ToolCalls}}{{range .ToolCalls}}\r\n{"name": "{{ .Function.Name }}", "arguments": '
     "{{ .Function.Arguments }}}{{end}}{{end}}", "{"),
    ('{{if .ToolCalls}}\n{{range .ToolCalls}}\n{"name": "{{ .Function.Name }}", "arguments": '
     "{{ .Function.Arguments }}}\r\n{{end}}\r\n{{end}}", "{"),
    ("{{if .ToolCalls}}<|tool▁calls▁begin|>{{range .ToolCalls}}<|tool▁call▁begin|>functionget_current_weather\n"
     '```json\n{"location": "Tokyo"}\n```<|tool▁call▁end|>\n{{end}}<|tool▁calls▁end|>{{end}}', "<|tool▁calls▁begin|>"),
    ('{{if .ToolCalls}}{{range .ToolCalls}}<tool_call>{"name": "{{ .Function.Name }}", "arguments": '
     "{{ .Function.Arguments }}}</tool_call>{{end}}{{end}}", "<tool_call>"),
    ('{{if .ToolCalls}}\n{{range .ToolCalls}}<tool_call>{"name": "{{ .Function.Name }}", "arguments": '
     "{{ .Function.Arguments }}}</tool_call>{{end}}{{end}}", "<tool_call>"),
    ('{{if .ToolCalls}}{{range .ToolCalls}}<tool_call>{"name": "{{ .Function.Name }}", "arguments": '
     "{{ .Function.Arguments }}}<tool_call>{{end}}{{end}}", "<tool_call>"),
    ("{{if .ToolCalls}}First text{{if .Content}}inner{{end}}Second text{{end}}", "First text"),
    ("{{if .ToolCalls}}Action: ```json{{end}}", "Action: ```json"),
    ("{{if .ToolCalls}}functools[{{end}}", "functools["),
    ("{{if .ToolCalls}}[TOOL_CALL] [{{end}}", "[TOOL_CALL] ["),
    ("{{if .ToolCalls}}[TOOL_CALL][{{end}}", "[TOOL_CALL][")
]  # fmt: skip


@pytest.mark.parametrize(("template", "tag"), OLLAMA_CASES)
def test_tag_as_ollama_derives_it(template: str, tag: str) -> None:
    assert template_tags("{{ range .Messages }}" + template + "{{ end }}")[0] == tag


def test_template_without_tool_calls_gets_ollamas_fallback() -> None:
    """No `{{ if .ToolCalls }}` (or an empty or unparsable template): Ollama's `{`, a tag-less JSON call."""
    assert template_tags("") == ("{", "")
    assert template_tags("{{ range .Messages }}{{ .Content }}{{ end }}") == ("{", "")
    assert template_tags("{{ if .Tools }}{{ range .ToolCalls }}<tool_call>{{ end }}{{ end }}") == ("{", "")
    assert template_tags("{{ if") == ("{", "")


@pytest.mark.parametrize(
    ("name", "tags"),
    [
        ("qwen2.5.gotmpl", ("<tool_call>", "</tool_call>")),
        ("llama3.1.gotmpl", ("{", "")),
        ("mistral.gotmpl", ("[TOOL_CALLS] [", "</s>")),
    ],
)
def test_library_templates(name: str, tags: tuple[str, str]) -> None:
    assert template_tags((TEMPLATES / name).read_text(encoding="utf-8")) == tags


def test_builtin_smollm2_template() -> None:
    """Its `{{ else if .ToolCalls }}` (an if nested in the else of `{{ if .Content }}`) opens `<tool_call>[`,
    the `[` of the call list written with the tag, as the template's instructions show the model."""
    assert template_tags(SMOLLM2.read_text(encoding="utf-8")) == ("<tool_call>[", "</tool_call>")


def test_closing_tag_is_the_text_after_the_calls() -> None:
    """The section's last text less the JSON's closing brackets; none where that is the tag or the JSON."""
    inner = '{{ range .ToolCalls }}{"name": "{{ .Function.Name }}"}{{ end }}'
    wrap = "{{ range .Messages }}{{ if .ToolCalls }}%s{{ end }}{{ end }}"
    assert template_tags(wrap % f"<calls>[{inner}]\n</calls>") == ("<calls>[", "</calls>")
    assert template_tags(wrap % f"<calls>{inner}") == ("<calls>", "")
    assert template_tags(wrap % "<call>{{ range .ToolCalls }}{{ .Function.Name }}{{ end }}") == ("<call>", "")
