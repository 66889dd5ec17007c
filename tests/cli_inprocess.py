"""`mlx-shim ARGS...` run in the test's own process against the real server (OLLAMA_HOST from the test's
environment): the same code as the command, without a Python start per call."""

from __future__ import annotations

import pytest

from shim.cli import main


def call(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The exit status, stdout and stderr of `mlx-shim ARGS...`."""
    try:
        status = main(list(args))
    except SystemExit as e:  # argparse's errors and --help
        status = int(e.code or 0)
    captured = capsys.readouterr()
    return status, captured.out, captured.err
