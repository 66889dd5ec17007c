"""The `mlx-shim` client commands, run as a user runs them (subprocesses with OLLAMA_HOST) against the real
server, and the pull progress rendering of Ollama's NDJSON protocol."""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from shim.cli_help import build_parser
from shim.client import Client
from shim.interactive import run_command
from shim.progress import Progress, human_bytes, human_time, table
from tests.conftest import cli, free_port


def run_cli(server: Any, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shim.cli", *args],
        env=server.env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_list_is_ollamas_table(server: Any) -> None:
    result = run_cli(server, "list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"NAME +ID +SIZE +MODIFIED +", lines[0])
    tags = {m["name"]: m for m in httpx.get(f"{server.url}/api/tags").json()["models"]}
    row = next(line for line in lines if line.startswith("tiny:latest "))
    name, digest, size, unit, *modified = row.split()
    assert digest == tags["tiny:latest"]["digest"][:12]
    assert f"{size} {unit}" == human_bytes(tags["tiny:latest"]["size"])
    assert " ".join(modified).endswith("ago")
    assert lines[0].index("ID") == row.index(digest)  # aligned columns
    only = run_cli(server, "ls", "qwen").stdout.splitlines()
    assert [line.split()[0] for line in only[1:]] == ["qwen-tiny:latest"]


def test_show_sections_and_single_fields(server: Any) -> None:
    shown = httpx.post(f"{server.url}/api/show", json={"model": "tiny"}).json()
    result = run_cli(server, "show", "tiny")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for section in ("  Model\n", "  Capabilities\n", "  Parameters\n", "  System\n"):
        assert section in text
    assert re.search(r"\n    architecture +qwen2 +\n", text)
    assert re.search(r"\n    context length +4096 +\n", text)
    assert re.search(r'\n    stop +"</s>" +\n', text)
    assert run_cli(server, "show", "tiny", "--modelfile").stdout == shown["modelfile"] + "\n"
    assert run_cli(server, "show", "tiny", "--parameters").stdout == shown["parameters"] + "\n"
    assert run_cli(server, "show", "tiny", "--template").stdout == shown["template"]
    assert run_cli(server, "show", "tiny", "--system").stdout == "You are a tiny test model."
    verbose = run_cli(server, "show", "qwen-tiny", "-v").stdout
    assert "  Metadata\n" in verbose and "  Tensors\n" in verbose and "tokenizer.ggml.tokens" in verbose
    both = run_cli(server, "show", "tiny", "--system", "--license")
    assert both.returncode == 1 and both.stderr.startswith("Error: only one of '--license'")
    missing = run_cli(server, "show", "nope")
    assert (missing.returncode, missing.stderr) == (1, "Error: model 'nope' not found\n")


def test_cp_and_rm(server: Any) -> None:
    copied = run_cli(server, "cp", "tiny", "cli-copy")
    assert (copied.returncode, copied.stdout) == (0, "copied 'tiny' to 'cli-copy'\n")
    assert "cli-copy:latest" in run_cli(server, "list").stdout
    removed = run_cli(server, "rm", "cli-copy")
    assert (removed.returncode, removed.stdout) == (0, "deleted 'cli-copy'\n")
    again = run_cli(server, "rm", "cli-copy")
    assert (again.returncode, again.stderr) == (1, "Error: model 'cli-copy' not found\n")
    bad = run_cli(server, "cp", "nope", "x")
    assert (bad.returncode, bad.stderr) == (1, 'Error: model "nope" not found\n')


def test_create_from_a_directory_uploads_blobs(server: Any, tiny_model_dir: Path, tmp_path: Path) -> None:
    modelfile = tmp_path / "Modelfile"
    modelfile.write_text(
        f'FROM {tiny_model_dir}\nSYSTEM """Be brief."""\nPARAMETER temperature 0.25\nLICENSE MIT\n'
        "MESSAGE user Who are you?\nMESSAGE assistant A test.\n"
    )
    result = run_cli(server, "create", "cli-made", "-f", str(modelfile))
    assert result.returncode == 0, result.stderr
    err = result.stderr.splitlines()
    assert err[0] == "gathering model components" and err[-2:] == ["writing manifest", "success"]
    uploaded = [line for line in err if line.startswith("copying file sha256:")]
    assert len(uploaded) == len([p for p in tiny_model_dir.iterdir() if p.is_file()])
    assert all(" 100% " in line for line in uploaded)
    for path in tiny_model_dir.iterdir():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert any(line.startswith(f"copying file sha256:{digest} ") for line in uploaded)
    shown = httpx.post(f"{server.url}/api/show", json={"model": "cli-made"}).json()
    assert shown["system"] == "Be brief." and shown["license"] == "MIT"
    assert shown["messages"] == [
        {"role": "user", "content": "Who are you?"},
        {"role": "assistant", "content": "A test."},
    ]
    assert "temperature                    0.25" in shown["parameters"]
    assert run_cli(server, "show", "cli-made", "--license").stdout == "MIT\n"
    assert Path(shown["modelfile"].split("\nFROM ", 1)[1].split("\n")[0]).parent == server.home / "models"

    # FROM an existing name sends `from`: nothing is uploaded.
    (tmp_path / "Child").write_text("FROM cli-made\nSYSTEM Be kind.\n")
    child = run_cli(server, "create", "cli-child", "-f", str(tmp_path / "Child"))
    assert child.returncode == 0 and child.stderr.splitlines() == ["writing manifest", "success"]
    assert httpx.post(f"{server.url}/api/show", json={"model": "cli-child"}).json()["system"] == "Be kind."
    assert run_cli(server, "rm", "cli-made", "cli-child").returncode == 0


def test_create_errors(server: Any, tmp_path: Path) -> None:
    (tmp_path / "Modelfile").write_text("FROM tiny\n")
    bad = run_cli(server, "create", "bad name!", "-f", str(tmp_path / "Modelfile"))
    assert (bad.returncode, bad.stderr) == (1, "Error: invalid model name: bad name!\n")
    missing = run_cli(server, "create", "x", "-f", str(tmp_path / "nope"))
    assert (missing.returncode, missing.stderr) == (
        1,
        f"Error: specified Modelfile wasn't found: No such file or directory: {tmp_path / 'nope'}\n",
    )
    # A FROM path that is not there is taken as a model name, as in Ollama; the CLI says which path it was.
    (tmp_path / "Nowhere").write_text("FROM /nonexistent/dir\n")
    nowhere = run_cli(server, "create", "x", "-f", str(tmp_path / "Nowhere"))
    assert nowhere.stderr == "Error: invalid model name (FROM /nonexistent/dir: no such file or directory)\n"
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no weights here")
    (tmp_path / "Empty").write_text("FROM ./empty\n")
    empty = run_cli(server, "create", "x", "-f", str(tmp_path / "Empty"))
    assert empty.stderr.endswith(f"Error: no Modelfile or safetensors files found in {tmp_path / 'empty'}\n")
    (tmp_path / "Adapter").write_text("FROM tiny\nADAPTER ./lora\n")
    adapter = run_cli(server, "create", "x", "-f", str(tmp_path / "Adapter"))
    assert adapter.stderr == "Error: ADAPTER is not supported: mlx-shim does not apply LoRA adapters\n"
    (tmp_path / "Bad").write_text("FROM tiny\nMESSAGE bot hi\n")
    role = run_cli(server, "create", "x", "-f", str(tmp_path / "Bad"))
    assert role.stderr == 'Error: (line 2): message role must be one of "system", "user", or "assistant"\n'
    quantized = run_cli(server, "create", "x", "-q", "q4_K_M", "-f", str(tmp_path / "Modelfile"))
    assert quantized.returncode == 1
    assert quantized.stderr.splitlines()[-1] == "Error: quantization is only supported for F16, BF16 and F32 models"
    (tmp_path / "Gone").write_text("FROM nope\n")
    gone = run_cli(server, "create", "x", "-f", str(tmp_path / "Gone"))
    assert gone.stderr == "Error: model 'nope' not found\n"


def test_run_one_prompt_streams_and_exits(server: Any) -> None:
    plain = run_cli(server, "run", "qwen-tiny", "--think=false", "Hello", "there")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.strip() and "Thinking..." not in plain.stdout and plain.stdout.endswith("\n")
    thinking = run_cli(server, "run", "qwen-tiny", "Hello")
    assert thinking.stdout.startswith("Thinking...\n") and "\n...done thinking.\n\n" in thinking.stdout
    assert "\x1b[" not in thinking.stdout  # no colours when the output is not a terminal
    hidden = run_cli(server, "run", "qwen-tiny", "--hidethinking", "Hello")
    assert "Thinking" not in hidden.stdout and hidden.stdout.strip()
    unknown = run_cli(server, "run", "nope", "hi")
    # As `ollama run`: a model that is not here is pulled first, and the pull's error is the answer.
    assert unknown.returncode == 1
    assert unknown.stderr == "pulling manifest\nError: pull model manifest: file does not exist\n"
    ps = run_cli(server, "ps")
    assert re.fullmatch(r"NAME +ID +SIZE +PROCESSOR +CONTEXT +UNTIL +", ps.stdout.splitlines()[0])
    row = next(line for line in ps.stdout.splitlines() if line.startswith("qwen-tiny:latest "))
    assert "100% CPU" in row and row.rstrip().endswith("from now")


def run_args(*argv: str) -> Any:
    """`mlx-shim run ARGV...` as the CLI parses it."""
    args, extra = build_parser().parse_known_args(["run", *argv])
    args.name, args.prompt = args.words[0], args.words[1:] + extra
    return args


def test_run_takes_all_of_piped_stdin_as_one_prompt(server: Any) -> None:
    """As `ollama run`: `cat notes | ollama run m "Summarize"` sends the notes, a space, then the words."""
    result = run_cli(server, "run", "qwen-tiny", "--think=false", stdin="Hi\n\nWhat is your name?\n/bye\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() and result.stdout.endswith("\n\n")
    client = RecordingClient(server.url)
    for piped, words in (("a\nb\n", ["Summarize"]), ("Hi\n/bye\nx\n", [])):
        run_command(client, run_args("qwen-tiny", "--think=false", *words), io.StringIO(piped), io.StringIO())
    assert [body["messages"] for body in client.sent] == [
        [{"role": "user", "content": "a\nb\n Summarize"}],
        [{"role": "user", "content": "Hi\n/bye\nx\n"}],
    ]


class TerminalInput(io.StringIO):  # a terminal's input, or output
    def isatty(self) -> bool:
        return True


class RecordingClient(Client):
    """The real client, keeping the bodies it sent: to see what history each turn carried."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.sent: list[dict[str, Any]] = []

    def stream(self, path: str, body: dict[str, Any]) -> Any:
        self.sent.append({**body, "messages": list(body.get("messages", []))})
        return super().stream(path, body)


def test_interactive_history_and_clear(server: Any) -> None:
    client = RecordingClient(server.url)
    out = TerminalInput()
    stdin = TerminalInput("Hi\nWhat is your name?\n/clear\nAgain\n/bye\n")
    run_command(client, run_args("qwen-tiny", "--think=false"), stdin, out)
    turns = [[m["role"] for m in body["messages"]] for body in client.sent]
    assert turns == [["user"], ["user", "assistant", "user"], ["user"]]
    assert client.sent[1]["messages"][1]["content"]  # the first answer, as streamed, is in the history
    assert "Cleared session context\n" in out.getvalue()


def test_interactive_multi_line_system_and_message(server: Any) -> None:
    """`/set system \"\"\"...` and `\"\"\"...` span lines; the system prompt leads the history, /clear keeps it."""
    client = RecordingClient(server.url)
    out = TerminalInput()
    typed = '/set system """Be\nbrief."""\n/set parameter num_predict 2\n"""Two\nlines"""\n/clear\nAgain\n/bye\n'
    run_command(client, run_args("qwen-tiny", "--think=false"), TerminalInput(typed), out)
    first, second = client.sent
    assert first["messages"] == [{"role": "system", "content": "Be\nbrief."}, {"role": "user", "content": "Two\nlines"}]
    assert first["options"] == {"num_predict": 2}
    assert second["messages"] == [{"role": "system", "content": "Be\nbrief."}, {"role": "user", "content": "Again"}]
    assert out.getvalue().count("Set system message.\n") == 1 and "... " in out.getvalue()


def test_cli_without_a_server(tmp_path: Path) -> None:
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "OLLAMA_HOST": f"127.0.0.1:{port}", "MLX_SHIM_HOME": str(tmp_path)}
    for args in (("list",), ("show", "x"), ("run", "x", "hi"), ("create", "x", "-f", str(tmp_path / "M"))):
        if args[0] == "create":
            (tmp_path / "M").write_text("FROM base\n")
        result = cli(*args, env=env)
        assert result.returncode == 1
        assert result.stderr == (
            f"Error: could not connect to mlx-shim at http://127.0.0.1:{port}, is it running? "
            "(start it with: mlx-shim serve)\n"
        )


PULL_STREAM = [
    {"status": "pulling manifest"},
    {"status": "pulling 6a0746a1ec1a", "digest": "sha256:6a0746a1ec1a" + "0" * 52, "total": 2_019_377_376},
    {
        "status": "pulling 6a0746a1ec1a",
        "digest": "sha256:6a0746a1ec1a" + "0" * 52,
        "total": 2_019_377_376,
        "completed": 1_000_000_000,
    },
    {"status": "pulling 966de95ca8a6", "digest": "sha256:966de95ca8a6" + "0" * 52, "total": 1429, "completed": 1429},
    {
        "status": "pulling 6a0746a1ec1a",
        "digest": "sha256:6a0746a1ec1a" + "0" * 52,
        "total": 2_019_377_376,
        "completed": 2_019_377_376,
    },
    {"status": "verifying sha256 digest"},
    {"status": "writing manifest"},
    {"status": "success"},
]


def test_pull_progress_without_a_terminal() -> None:
    out = io.StringIO()
    progress = Progress(out, tty=False)
    for event in PULL_STREAM:
        progress.pull_event(event)
    progress.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "pulling manifest"
    assert re.fullmatch(r"pulling 966de95ca8a6: 100% ▕█+▏ 1\.4 KB", lines[1])
    assert re.fullmatch(r"pulling 6a0746a1ec1a: 100% ▕█+▏ 2\.0 GB", lines[2])
    assert lines[3:] == ["verifying sha256 digest", "writing manifest", "success"]


def test_pull_progress_on_a_terminal_redraws_in_place() -> None:
    out = io.StringIO()
    progress = Progress(out, tty=True)
    for event in PULL_STREAM[:3]:
        progress.pull_event(event)
    progress.close()
    first, final = out.getvalue().split("\x1b[1A")  # back up over the one line drawn so far, then redraw
    assert first == "\r\x1b[Kpulling manifest\n"
    assert re.fullmatch(r"\r\x1b\[Kpulling manifest\n\x1b\[Kpulling 6a0746a1ec1a:  50% ▕█+ +▏   1 GB/2\.0 GB\n", final)
    assert "pulling 0" not in out.getvalue()  # the 0-byte first report of a layer is skipped, as ollama does


def test_progress_without_a_digest_is_a_bar_of_its_own() -> None:
    out = io.StringIO()
    progress = Progress(out, tty=False)
    for completed in (0, 500_000, 1_000_000):
        progress.pull_event({"status": "pulling model", "total": 1_000_000, "completed": completed})
    progress.pull_event({"status": "success"})
    progress.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and re.fullmatch(r"pulling model 100% ▕█+▏ +1 MB", lines[0]) and lines[1] == "success"


def test_formats() -> None:
    assert [human_bytes(n) for n in (999, 1000, 1500, 232_000, 2_019_377_376, 10**12)] == [
        "999 B",
        "1 KB",
        "1.5 KB",
        "232 KB",
        "2.0 GB",
        "1 TB",
    ]
    assert human_time("0001-01-01T00:00:00Z") == "Never"
    from datetime import UTC, datetime

    now = datetime(2026, 1, 10, 12, 0, 0, tzinfo=UTC)
    assert human_time("2026-01-10T11:59:59.123456789Z", now=now) == "Less than a second ago"
    assert human_time("2026-01-10T11:58:30+00:00", now=now) == "About a minute ago"
    assert human_time("2026-01-10T09:00:00Z", now=now) == "3 hours ago"
    assert human_time("2026-01-10T12:04:30.5+00:00", now=now) == "4 minutes from now"
    assert human_time("2025-12-25T12:00:00Z", now=now) == "2 weeks ago"
    assert table([["A", "BB"], ["CCC", "D"]]) == "A      BB    \nCCC    D     \n"


def test_the_client_commands_import_no_mlx() -> None:
    """registry/ reaches mlx-lm only inside functions (shim/engine/mlx_lm_api.py), so `mlx-shim list` and the other
    client commands start without importing MLX, mlx-lm or the engine."""
    code = "import sys, shim.cli; print([m for m in ('mlx.core', 'mlx_lm', 'shim.engine') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
