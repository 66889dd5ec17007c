"""The `mlx-shim` commands, their flags and help texts, as the `ollama` v0.24.0 CLI (cobra) declares and prints
them: one table (`COMMANDS`) builds both the argparse parser and the `--help` pages, so they cannot drift.

`mlx-shim X --help` and `mlx-shim help X` print cobra's layout: the short text, `Usage:`, `Aliases:`,
`Flags:` (sorted, the usage column aligned as pflag aligns it) and `Environment Variables:`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any, NoReturn

PROG = "mlx-shim"


@dataclass(frozen=True)
class Flag:
    name: str
    usage: str
    short: str = ""
    kind: str = ""  # "" for a switch, else pflag's type word ("string")
    no_value: str | None = None  # pflag's NoOptDefVal: `--think` alone means "true"


@dataclass(frozen=True)
class Command:
    use: str
    short: str
    flags: tuple[Flag, ...] = ()
    aliases: tuple[str, ...] = ()
    env: tuple[str, ...] = ("OLLAMA_HOST",)
    args: tuple[int, int | None] = (0, None)  # cobra's Args: the least and most words (None: any number)

    @property
    def name(self) -> str:
        return self.use.split()[0]


ENV = {
    "OLLAMA_DEBUG": "Show additional debug information (e.g. OLLAMA_DEBUG=1)",
    "OLLAMA_HOST": "IP Address for the ollama server (default 127.0.0.1:11434)",
    "OLLAMA_CONTEXT_LENGTH": "Context length to use unless otherwise specified (default: 4096)",
    "OLLAMA_KEEP_ALIVE": 'The duration that models stay loaded in memory (default "5m")',
    "OLLAMA_MAX_LOADED_MODELS": "Maximum number of loaded models",
    "OLLAMA_MAX_QUEUE": "Maximum number of queued requests",
    "OLLAMA_MODELS": "The path to an Ollama models directory to import from",
    "OLLAMA_NUM_PARALLEL": "Maximum number of parallel requests",
    "OLLAMA_NOPRUNE": "Do not prune model blobs on startup",
    "OLLAMA_ORIGINS": "A comma separated list of allowed origins",
    "OLLAMA_NOHISTORY": "Do not preserve readline history",
}

_VERBOSE = Flag("verbose", "Show timings for response")
COMMANDS = (
    Command(
        "serve",
        "Start mlx-shim",
        (Flag("no-builtin", "Do not register the embedded models (smollm2:135m, all-minilm) on first start"),),
        aliases=("start",),
        env=(
            "OLLAMA_DEBUG",
            "OLLAMA_HOST",
            "OLLAMA_CONTEXT_LENGTH",
            "OLLAMA_KEEP_ALIVE",
            "OLLAMA_MAX_LOADED_MODELS",
            "OLLAMA_MAX_QUEUE",
            "OLLAMA_MODELS",
            "OLLAMA_NUM_PARALLEL",
            "OLLAMA_NOPRUNE",
            "OLLAMA_ORIGINS",
        ),
        args=(0, 0),
    ),  # fmt: skip
    Command(
        "create MODEL",
        "Create a model",
        (
            Flag("file", 'Name of the Modelfile (default "Modelfile")', "f", "string"),
            Flag("quantize", "Quantize model to this level (e.g. q4_K_M)", "q", "string"),
        ),
        args=(1, 1),
    ),
    Command(
        "show MODEL",
        "Show information for a model",
        (
            Flag("license", "Show license of a model"),
            Flag("modelfile", "Show Modelfile of a model"),
            Flag("parameters", "Show parameters of a model"),
            Flag("template", "Show template of a model"),
            Flag("system", "Show system message of a model"),
            Flag("verbose", "Show detailed model information", "v"),
        ),
        args=(1, 1),
    ),
    Command(
        "run MODEL [PROMPT]",
        "Run a model",
        (
            Flag("keepalive", "Duration to keep a model loaded (e.g. 5m)", kind="string"),
            _VERBOSE,
            Flag("nowordwrap", "Don't wrap words to the next line automatically"),
            Flag("format", "Response format (e.g. json)", kind="string"),
            Flag(
                "think",
                "Enable thinking mode: true/false or high/medium/low for supported models",
                kind="string",
                no_value="true",
            ),  # fmt: skip
            Flag("hidethinking", "Hide thinking output (if provided)"),
        ),
        env=("OLLAMA_HOST", "OLLAMA_NOHISTORY"),
        args=(1, None),
    ),
    Command("stop MODEL", "Stop a running model", args=(1, 1)),
    Command("pull MODEL", "Pull a model from a registry", args=(1, 1)),
    Command("import [NAME...]", "Import models from the server's Ollama library (OLLAMA_MODELS)"),
    Command("list", "List models", aliases=("ls",)),
    Command("ps", "List running models"),
    Command("cp SOURCE DESTINATION", "Copy a model", args=(2, 2)),
    Command("rm MODEL [MODEL...]", "Remove a model", args=(1, None)),
)
_HELP = Command("help [command]", "Help about any command", env=())
_ROOT_FLAGS = (Flag("version", "Show version information", "v"),)


def root_help() -> str:
    width = max(11, *(len(c.name) for c in (*COMMANDS, _HELP)))
    listing = "".join(f"  {c.name.ljust(width)} {c.short}\n" for c in (*COMMANDS, _HELP))
    return (
        f"Large language model runner (Ollama's API on MLX)\n\nUsage:\n  {PROG} [flags]\n  {PROG} [command]\n\n"
        f"Available Commands:\n{listing}\nFlags:\n{_flag_usages(_ROOT_FLAGS, PROG)}\n"
        f'Use "{PROG} [command] --help" for more information about a command.\n'
    )


def command_help(command: Command) -> str:
    text = f"{command.short}\n\nUsage:\n  {PROG} {command.use} [flags]\n"
    if command.aliases:
        text += f"\nAliases:\n  {', '.join((command.name, *command.aliases))}\n"
    text += f"\nFlags:\n{_flag_usages(command.flags, command.name)}"
    if command.env:
        text += "\nEnvironment Variables:\n" + "".join(f"      {name:<27}   {ENV[name]}\n" for name in command.env)
    return text


def _flag_usages(flags: tuple[Flag, ...], owner: str) -> str:
    """pflag's FlagUsages: sorted by name, `-x, --name type`, the usage column two past the longest."""
    every = sorted((*flags, Flag("help", f"help for {owner}", "h")), key=lambda f: f.name)
    lefts = []
    for flag in every:
        left = f"  -{flag.short}, --{flag.name}" if flag.short else f"      --{flag.name}"
        if flag.kind:
            left += f" {flag.kind}" + (f'[="{flag.no_value}"]' if flag.no_value is not None else "")
        lefts.append(left)
    width = max(len(left) for left in lefts)
    return "".join(f"{left.ljust(width)}   {flag.usage}\n" for left, flag in zip(lefts, every, strict=True))


class _Help(argparse.Action):
    def __init__(self, option_strings: list[str], dest: str, text: str = "", **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)
        self.text = text

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> NoReturn:
        sys.stdout.write(self.text)
        parser.exit()


class _Parser(argparse.ArgumentParser):
    """Errors as cobra prints them: `Error: ...`, exit status 1."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("argument command: invalid choice: "):
            command = message.split("'")[1]
            message = f'unknown command "{command}" for "{PROG}"\nRun \'{PROG} --help\' for usage.'
        self.exit(1, f"Error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, add_help=False)
    parser.add_argument("-h", "--help", action=_Help, text=root_help())
    parser.add_argument("-v", "--version", action="store_true")
    subcommands = parser.add_subparsers(dest="command", parser_class=_Parser)
    for command in COMMANDS:
        sub = subcommands.add_parser(command.name, aliases=list(command.aliases), add_help=False)
        sub.add_argument("-h", "--help", action=_Help, text=command_help(command))
        sub.add_argument("words", nargs="*")
        for flag in command.flags:
            names = [f"-{flag.short}", f"--{flag.name}"] if flag.short else [f"--{flag.name}"]
            if not flag.kind:
                sub.add_argument(*names, action="store_true")
            elif flag.no_value is not None:
                sub.add_argument(*names, nargs="?", const=flag.no_value)
            else:
                sub.add_argument(*names)
    helper = subcommands.add_parser("help", add_help=False)
    helper.add_argument("-h", "--help", action=_Help, text=command_help(_HELP))
    helper.add_argument("topic", nargs="*")
    return parser


def no_value_flags(argv: list[str]) -> list[str]:
    """pflag's NoOptDefVal: `--think` alone is `--think=true`, and the word after it is not its value."""
    bare = {f"--{flag.name}": f"--{flag.name}={flag.no_value}" for c in COMMANDS for flag in c.flags if flag.no_value}
    return [bare.get(arg, arg) for arg in argv]


def check_args(command_name: str, words: list[str]) -> str | None:
    """cobra's ExactArgs/MinimumNArgs/NoArgs text when `words` do not fit the command, else None."""
    command = next(c for c in COMMANDS if command_name in (c.name, *c.aliases))
    least, most = command.args
    if least == most and len(words) != least:
        return f"accepts {least} arg(s), received {len(words)}"
    if len(words) < least:
        return f"requires at least {least} arg(s), only received {len(words)}"
    return None


def help_for(topic: list[str]) -> str:
    """`mlx-shim help [command]`: that command's page, else the root's (as cobra, for an unknown one too)."""
    for command in COMMANDS:
        if topic and topic[0] in (command.name, *command.aliases):
            return command_help(command)
    return command_help(_HELP) if topic[:1] == ["help"] else root_help()
