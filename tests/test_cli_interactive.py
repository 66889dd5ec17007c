"""`mlx-shim` as a person types it: help texts, `--version`, `stop`, and an interactive `run` in a
pseudo-terminal (pexpect) with ollama's slash commands, multi-line input, Ctrl-C and Ctrl-D, against the real
server and the tiny model (each answer a few tokens)."""

from __future__ import annotations

import sys
from typing import Any

import httpx
import pexpect
import pytest

from shim.cli import main
from tests.conftest import Server, cli


def call(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`mlx-shim ARGS...` in this process (what these check does not need a process of its own)."""
    try:
        status = main(list(args))
    except SystemExit as e:
        status = int(e.code or 0)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_help_version_and_argument_errors(
    server: Server, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", server.env["OLLAMA_HOST"])
    status, root, _ = call(capsys, "--help")
    assert status == 0 and root.startswith("Large language model runner")
    assert "\n  stop        Stop a running model\n" in root
    assert root.endswith('\nUse "mlx-shim [command] --help" for more information about a command.\n')
    assert call(capsys) == (0, root, "")  # no command: the same page
    assert (
        call(capsys, "help", "ls")
        == call(capsys, "ls", "--help")
        == (
            0,
            "List models\n\nUsage:\n  mlx-shim list [flags]\n\nAliases:\n  list, ls\n\nFlags:\n"
            "  -h, --help   help for list\n\nEnvironment Variables:\n"
            "      OLLAMA_HOST                   IP Address for the ollama server (default 127.0.0.1:11434)\n",
            "",
        )
    )
    run = call(capsys, "run", "-h")[1]
    assert '\n      --think string[="true"]   Enable thinking mode: true/false or high/medium/low' in run
    assert "\n      --verbose                 Show timings for response\n" in run
    assert call(capsys, "--version") == (0, "ollama version is 0.24.0\n", "")
    for args, error in [
        (("show",), "Error: accepts 1 arg(s), received 0\n"),
        (("rm",), "Error: requires at least 1 arg(s), only received 0\n"),
        (("list", "--bogus"), "Error: unknown flag: --bogus\n"),
        (("bogus",), 'Error: unknown command "bogus" for "mlx-shim"\nRun \'mlx-shim --help\' for usage.\n'),
        (("run", "qwen-tiny", "--think=loud", "hi"), 'Error: invalid value for --think: "loud" (must be true, '
         "false, high, medium, low, or max)\n"),
    ]:  # fmt: skip
        assert call(capsys, *args) == (1, "", error)


def test_stop_unloads_a_model(server: Server) -> None:
    loaded = cli("run", "qwen-tiny", env=server.env)  # nothing piped, no prompt: the model is loaded
    assert loaded.returncode == 0, loaded.stderr
    assert "qwen-tiny:latest" in cli("ps", env=server.env).stdout
    stopped = cli("stop", "qwen-tiny", env=server.env)
    assert (stopped.returncode, stopped.stdout, stopped.stderr) == (0, "", "")
    assert "qwen-tiny" not in cli("ps", env=server.env).stdout
    missing = cli("stop", "nope", env=server.env)
    assert (missing.returncode, missing.stderr) == (1, 'Error: couldn\'t find model "nope" to stop\n')


def spawn(server: Server, *args: str) -> Any:
    child = pexpect.spawn(
        sys.executable, ["-m", "shim.cli", "run", *args], env=server.env, encoding="utf-8", timeout=60
    )
    child.expect_exact(">>> ")
    return child


def say(child: Any, line: str, *expected: str) -> None:
    """Type a line; each expected text must follow in order, then the prompt again."""
    child.sendline(line)
    for text in expected:
        child.expect_exact(text)
    child.expect_exact(">>> ")


def test_interactive_session(server: Server) -> None:
    child = spawn(server, "qwen-tiny")
    say(child, "/?", "/set            Set session variables", 'Use """ to begin a multi-line message.')
    say(child, "/? shortcuts", "Ctrl + d            Exit mlx-shim (/bye)")
    say(child, "/set", "/set nothink           Disable thinking")
    say(child, "/set parameter num_predict 3", "Set parameter 'num_predict' to '3'")
    say(child, "/set parameter bogus 1", "Couldn't set parameter: \"unknown parameter 'bogus'\"")
    say(child, "/set nothink", "Set 'nothink' mode.")
    say(child, "/set system Be brief.", "Set system message.")
    say(child, "/set format yaml", "Invalid or missing format. For 'json' mode use '/set format json'")
    say(child, "/set nowordwrap", "Set 'nowordwrap' mode.")
    say(child, "/set verbose", "Set 'verbose' mode.")
    child.sendline('"""Hello')
    child.expect_exact("... ")  # ollama's prompt while a multi-line message is open
    say(child, 'there"""', "eval count:           3 token(s)", "eval rate:")
    say(child, "/show system", "Be brief.")
    say(child, "/show parameters", "User defined parameters:", "num_predict                    3")
    say(child, "/show license", "No license was specified for this model.")
    say(child, "/show modelfile", '# Modelfile generated by "ollama show"')
    say(child, "/show bogus", "Unknown command '/show bogus'. Type /? for help")
    say(child, "/save bad!", "error: The model name 'bad!' is invalid")
    say(child, "/save cli-saved", "Created new model 'cli-saved'")
    say(child, "/load nope", "Loading model 'nope'", "Couldn't find model 'nope'")
    say(child, "/bogus", "Unknown command '/bogus'. Type /? for help")
    child.sendcontrol("c")  # at the prompt: a hint, and the session goes on
    child.expect_exact("Use Ctrl + d or /bye to exit.")
    child.expect_exact(">>> ")
    say(child, "/clear", "Cleared session context")
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    saved = httpx.post(f"{server.url}/api/show", json={"model": "cli-saved"}).json()
    assert saved["system"] == "Be brief." and "num_predict" in saved["parameters"]
    assert [m["role"] for m in saved["messages"]] == ["system", "user", "assistant"]
    assert saved["messages"][1]["content"] == "Hello\nthere"
    assert cli("rm", "cli-saved", env=server.env).returncode == 0

    for farewell in ("/bye", "/exit"):
        child = spawn(server, "qwen-tiny")
        child.sendline(farewell)
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
