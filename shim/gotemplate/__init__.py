"""Ollama prompt templates: the Go ``text/template`` subset they use, executed the way Ollama executes them.

Modelfile ``TEMPLATE`` lines and the ``template`` field of ``/api/generate`` are Go templates run by
Ollama's ``template`` package. Mirroring that here keeps prompts byte-identical with Ollama's, and a
template outside the subset raises :class:`TemplateError` instead of rendering something else.

How the HTTP layer uses it (as ollama/server/routes.go and server/prompt.go do):

* ``/api/chat``: ``Template.parse(model_template).execute(chat_values(messages, tools=..., think=...,
  model_system=..., model_messages=...))``.
* ``/api/generate`` (not ``raw``, non-empty prompt): ``Template.parse(request_template or model_template)
  .execute(generate_values(prompt, system=..., suffix=..., think=..., model_system=...,
  model_messages=...))``; pass ``model_messages=()`` when the request carries the deprecated ``context``.

Left to the caller, as Ollama does it outside ``Template.Execute``: defaulting an unset ``think`` to true
for thinking models, dropping old messages that overflow the context window, ``[img-N]`` image tags, and
the per-model removal of earlier ``<think>`` blocks.

Supported: text, trim markers, comments, pipelines with ``|`` and parentheses, ``if``/``else if``/``else``,
``range`` (``$i, $v :=``, ``else``, ``break``, ``continue``), ``with``/``else with``, variables, the Go
builtins and, or, not, eq, ne, lt, le, gt, ge, len, index, slice (two indexes), print, printf (%s %v %d %t),
println, and Ollama's json, currentDate, yesterdayDate and toTypeScriptType. Rejected: define, template,
block, html/js/urlquery/call, character constants, unknown functions, fields Ollama never provides, and
printing a list of messages (Go prints memory addresses).

One deliberate difference: a tool's ``{{ .Function }}`` and ``{{ .Function.Parameters }}`` print JSON, as
Ollama did before v0.14 and as its pending fix restores (ollama#14601); v0.14+ prints Go struct syntax.

Modules, in pipeline order: ``lexer`` and ``parser`` (the parse tree), ``govalues`` and ``structs`` (the Go
values a template sees), ``gofmt`` (how Go prints them), ``functions`` (the callable builtins), ``execute``
(the tree walker), and ``ollama`` (Ollama's Values and Template.Execute around it); ``errors`` holds
:class:`TemplateError`.
"""

from shim.gotemplate.errors import TemplateError
from shim.gotemplate.ollama import Template, Values, chat_values, generate_values

__all__ = ["Template", "TemplateError", "Values", "chat_values", "generate_values"]
