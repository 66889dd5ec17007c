"""`mlx-shim run`, as `ollama run` v0.24.0 (its cmd/cmd.go RunHandler and cmd/interactive.go): one prompt (the
words, after all of a piped stdin), or on a terminal a conversation with ollama's slash commands (`/set`,
`/show`, `/load`, `/save`, `/clear`, `/bye`, `/?`), `\"\"\"` multi-line input, Ctrl-C and Ctrl-D as ollama
handles them, and `--verbose` timings. What is printed where (stdout, or stderr for help and statistics)
follows ollama, text for text.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from registry.parameters import coerce_parameter
from shim.client import Client, ClientError
from shim.commands import list_models, show_info
from shim.config import env_bool
from shim.repl_help import USAGE, USAGE_PARAMETERS, USAGE_SET, USAGE_SHORTCUTS, USAGE_SHOW
from shim.run_chat import RunOptions, chat, show_or_pull, think_flag


def run_command(client: Client, args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    """RunHandler: the flags, the model (pulled first when it is not here), then one prompt or a session."""
    opts = RunOptions(
        args.name,
        think=think_flag(args.think),
        hide_thinking=args.hidethinking,
        verbose=args.verbose,
        word_wrap=not args.nowordwrap,
        format=args.format or "",
        keep_alive=args.keepalive,
    )
    prompts = list(args.prompt)
    if not stdin.isatty():  # as ollama: piped input is one prompt, put before the prompt words
        piped = stdin.read()
        prompts = [piped, *prompts] if piped else prompts
    capabilities = show_or_pull(client, opts.model).get("capabilities") or []
    opts.think_set = opts.think is not None
    if not opts.think_set and "thinking" in capabilities:
        opts.think = True  # inferThinkingOption: a thinking model thinks unless told otherwise
    if prompts:
        opts.messages.append({"role": "user", "content": " ".join(prompts)})
        chat(client, opts, out)
        return
    if stdin.isatty() and out.isatty():
        Session(client, opts, stdin, out).run()
    else:  # no prompt, and not a terminal both ways: the model is loaded, as ollama's run then preloads it
        client.request("POST", "/api/chat", {"model": opts.model, "messages": []})


class Session:
    """generateInteractive: read a line, act on a slash command or send the message, until /bye or Ctrl-D."""

    def __init__(self, client: Client, opts: RunOptions, stdin: TextIO, out: TextIO) -> None:
        self.client, self.opts, self.out = client, opts, out
        self.buffer = ""  # ollama's sb: the message (or system prompt) being typed
        self.multiline: str | None = None  # "prompt" or "system" while inside """ ... """
        self.reader = _LineReader(stdin, out)

    def run(self) -> None:
        self._print_loaded_messages()
        while True:
            try:
                line = self.reader.read("... " if self.multiline else ">>> ")
            except EOFError:  # Ctrl-D
                self._print("")
                return
            except KeyboardInterrupt:  # Ctrl-C at the prompt drops what was typed and stays
                self._print("\nUse Ctrl + d or /bye to exit.")
                self.buffer, self.multiline = "", None
                continue
            if self._handle(line) == "exit":
                return
            if self.buffer and self.multiline is None:
                self.opts.messages.append({"role": "user", "content": self.buffer})
                self.buffer = ""
                try:
                    answer = chat(self.client, self.opts, self.out)
                except ClientError as e:
                    if "does not support thinking" not in e.message and "invalid think value" not in e.message:
                        raise
                    self._print(f"error: {e.message}")
                    self.opts.messages.pop()
                    continue
                if answer is None:
                    self.opts.messages.pop()  # stopped: the unanswered question is not kept
                else:
                    self.opts.messages.append(answer)

    def _handle(self, line: str) -> str | None:
        """One line, in ollama's order of checks; "exit" ends the session."""
        if self.multiline is not None:
            before, closed = _cut_suffix(line, '"""')
            self.buffer += before
            if not closed:
                self.buffer += "\n"
                return None
            if self.multiline == "system":
                self._set_system(self.buffer)
                self.buffer = ""
            self.multiline = None
            return None
        if line.startswith('"""'):
            text, closed = _cut_suffix(line[3:], '"""')
            self.buffer += text
            if not closed:
                self.buffer += "\n"
                self.multiline = "prompt"
            return None
        words = line.split()
        if line.startswith("/list"):
            list_models(self.client, words[1] if len(words) > 1 else None, self.out)
        elif line.startswith("/load"):
            self._load(words)
        elif line.startswith("/save"):
            self._save(words)
        elif line.startswith("/clear"):
            self.opts.messages = [{"role": "system", "content": self.opts.system}] if self.opts.system else []
            self._print("Cleared session context")
        elif line.startswith("/set"):
            self._set(words)
        elif line.startswith("/show"):
            self._show(words)
        elif line.startswith(("/help", "/?")):
            topic = words[1] if len(words) > 1 else None
            help_text = {"set": USAGE_SET, "/set": USAGE_SET, "show": USAGE_SHOW, "/show": USAGE_SHOW,
                         "shortcut": USAGE_SHORTCUTS, "shortcuts": USAGE_SHORTCUTS}  # fmt: skip
            sys.stderr.write(USAGE if topic is None else help_text.get(topic, ""))
        elif line.startswith(("/exit", "/bye")):
            return "exit"
        elif line.startswith("/"):
            self._print(f"Unknown command '{words[0]}'. Type /? for help")
        else:
            self.buffer += line
        return None

    def _set(self, words: list[str]) -> None:
        if len(words) < 2:
            sys.stderr.write(USAGE_SET)
            return
        opts, what = self.opts, words[1]
        if what in ("history", "nohistory"):
            self.reader.history = what == "history"
        elif what in ("wordwrap", "nowordwrap"):
            opts.word_wrap = what == "wordwrap"
            self._print(f"Set '{what}' mode.")
        elif what in ("verbose", "quiet"):
            opts.verbose = what == "verbose"
            self._print(f"Set '{what}' mode.")
        elif what == "think":
            level = words[2] if len(words) > 2 else ""
            opts.think, opts.think_set = level or True, True
            self._warn_without_thinking()
            self._print(f"Set 'think' mode to '{level}'." if level else "Set 'think' mode.")
        elif what == "nothink":
            opts.think, opts.think_set = False, True
            self._warn_without_thinking()
            self._print("Set 'nothink' mode.")
        elif what == "format":
            if len(words) < 3 or words[2] != "json":
                self._print("Invalid or missing format. For 'json' mode use '/set format json'")
            else:
                opts.format = "json"
                self._print("Set format to 'json' mode.")
        elif what == "noformat":
            opts.format = ""
            self._print("Disabled format.")
        elif what == "parameter":
            self._set_parameter(words[2:])
        elif what == "system":
            self._start_system(words)
        else:
            self._print(f"Unknown command '/set {what}'. Type /? for help")

    def _set_parameter(self, words: list[str]) -> None:
        if len(words) < 2:
            sys.stderr.write(USAGE_PARAMETERS)
            return
        name, values = words[0], words[1:]
        try:  # api.FormatParams: stop takes every word, the others their first
            value = (
                [coerce_parameter(name, v)[1] for v in values]
                if name == "stop"
                else coerce_parameter(name, values[0])[1]
            )
        except ValueError as e:
            self._print(f'Couldn\'t set parameter: "{e}"')
            return
        self._print(f"Set parameter '{name}' to '{', '.join(values)}'")
        self.opts.options[name] = value

    def _start_system(self, words: list[str]) -> None:
        if len(words) < 3:
            sys.stderr.write(USAGE_SET)
            return
        text = " ".join(words[2:])
        if text.startswith('"""'):
            text, closed = _cut_suffix(text[3:], '"""')
            if not closed:  # ollama drops this line's newline ("Be" + "brief." is "Bebrief."); kept here
                self.buffer += text + "\n"
                self.multiline = "system"
                return
        self._set_system(self.buffer + text)
        self.buffer = ""

    def _set_system(self, text: str) -> None:
        """The system prompt replaces a system message at the end of the history, else joins it."""
        self.opts.system = text
        message = {"role": "system", "content": text}
        if self.opts.messages and self.opts.messages[-1]["role"] == "system":
            self.opts.messages[-1] = message
        else:
            self.opts.messages.append(message)
        self._print("Set system message.")

    def _show(self, words: list[str]) -> None:
        if len(words) < 2:
            sys.stderr.write(USAGE_SHOW)
            return
        request: dict[str, Any] = {"model": self.opts.model, "system": self.opts.system}
        if self.opts.options:
            request["options"] = self.opts.options
        shown = self.client.request("POST", "/api/show", request)
        what = words[1]
        if what == "info":
            sys.stderr.write(show_info(shown, False))
        elif what == "license":
            self._print(shown.get("license") or "No license was specified for this model.")
        elif what == "modelfile":
            self._print(shown.get("modelfile", ""))
        elif what == "parameters":
            self._print("Model defined parameters:")
            parameters = shown.get("parameters") or ""
            for line in (
                parameters.split("\n") if parameters else ["No additional parameters were specified for this model."]
            ):
                self._print(f"  {line}")
            self._print("")
            if self.opts.options:
                self._print("User defined parameters:")
                for name, value in self.opts.options.items():
                    self._print(f"  {name:<30} {_go_value(value)}")
                self._print("")
        elif what == "system":
            system = self.opts.system or shown.get("system", "")
            self._print(system + "\n" if system else "No system message was specified for this model.")
        elif what == "template":
            self._print(shown.get("template") or "No prompt template was specified for this model.")
        else:
            self._print(f"Unknown command '/show {what}'. Type /? for help")

    def _load(self, words: list[str]) -> None:
        if len(words) != 2:
            self._print("Usage:\n  /load <modelname>")
            return
        name = words[1]
        self._print(f"Loading model '{name}'")
        try:
            shown = self.client.request("POST", "/api/show", {"model": name})
            self.client.request("POST", "/api/chat", {"model": name, "messages": []})  # loads it, as ollama
        except ClientError as e:
            if "not found" not in e.message:
                raise
            self._print(f"Couldn't find model '{name}'")
            return
        self.opts.model, self.opts.messages = name, []
        if not self.opts.think_set:  # inferred again for the new model, unless the user chose
            self.opts.think = True if "thinking" in (shown.get("capabilities") or []) else None
        self._print_loaded_messages(shown)

    def _save(self, words: list[str]) -> None:
        """NewCreateRequest: a model FROM this one with the session's system prompt, parameters and messages."""
        if len(words) != 2:
            self._print("Usage:\n  /save <modelname>")
            return
        body: dict[str, Any] = {"model": words[1], "from": self.opts.model, "stream": False}
        if self.opts.system:
            body["system"] = self.opts.system
        if self.opts.options:
            body["parameters"] = self.opts.options
        if self.opts.messages:
            body["messages"] = self.opts.messages
        try:
            self.client.request("POST", "/api/create", body)
        except ClientError as e:
            if "invalid model name" not in e.message:
                raise
            self._print(f"error: The model name '{words[1]}' is invalid")
            return
        self._print(f"Created new model '{words[1]}'")

    def _warn_without_thinking(self) -> None:
        """ensureThinkingSupport: a warning (on stderr) when the model cannot think; the setting stays."""
        try:
            capabilities = self.client.request("POST", "/api/show", {"model": self.opts.model}).get("capabilities")
        except ClientError:
            return
        if "thinking" not in (capabilities or []):
            sys.stderr.write(f'warning: model "{self.opts.model}" does not support thinking output\n')

    def _print_loaded_messages(self, shown: dict[str, Any] | None = None) -> None:
        """The model's MESSAGE history, drawn as if typed (the server puts it before each chat)."""
        if shown is None:
            shown = self.client.request("POST", "/api/show", {"model": self.opts.model})
        for message in (shown or {}).get("messages") or []:
            if message.get("role") == "user":
                self._print(f">>> {message.get('content', '')}")
            elif message.get("role") == "assistant":
                self._print(f"{message.get('content', '')}\n")

    def _print(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()


class _LineReader:
    """Lines from the terminal with line editing and in-session history (Python's readline, where it is
    built in); from any other text stream with a terminal's isatty (tests), lines as written."""

    def __init__(self, stdin: TextIO, out: TextIO) -> None:
        self.stdin, self.out = stdin, out
        self.editing = stdin is sys.stdin and out is sys.stdout
        self.readline: Any = None
        if self.editing:
            try:
                import readline

                self.readline = readline
            except ImportError:
                self.readline = None
        self.history = not env_bool("OLLAMA_NOHISTORY")

    @property
    def history(self) -> bool:
        return self._history

    @history.setter
    def history(self, on: bool) -> None:
        self._history = on
        if self.readline is not None:
            self.readline.set_auto_history(on)

    def read(self, prompt: str) -> str:
        if self.editing:
            return input(prompt)
        self.out.write(prompt)
        self.out.flush()
        line = self.stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")


def _cut_suffix(text: str, suffix: str) -> tuple[str, bool]:
    return (text[: -len(suffix)], True) if text.endswith(suffix) else (text, False)


def _go_value(value: Any) -> str:
    """Go's %v: a list as [a b], a bool in lower case."""
    if isinstance(value, list):
        return "[" + " ".join(_go_value(v) for v in value) + "]"
    return str(value).lower() if isinstance(value, bool) else str(value)
