"""A test server that dies of a signal leaves its native stacks (tests/crash_report.py): checked on a real
crash, a Python process that reads address 0."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.crash_report import allow_core_dumps, native_stacks


def _cores_land_in_the_working_directory() -> bool:
    path = Path("/proc/sys/kernel/core_pattern")
    pattern = path.read_text() if path.is_file() else "|"
    return not pattern.startswith("|") and "/" not in pattern


@pytest.mark.skipif(
    not (_cores_land_in_the_working_directory() and shutil.which("gdb")),
    reason="needs Linux cores written to the working directory and gdb",
)
def test_a_crashed_process_leaves_its_native_stacks(tmp_path: Path) -> None:
    crash = "import ctypes; ctypes.string_at(0)"
    process = subprocess.Popen([sys.executable, "-c", crash], cwd=tmp_path, preexec_fn=allow_core_dumps)
    returncode = process.wait(timeout=60)
    assert returncode == -signal.SIGSEGV
    report = native_stacks(returncode, process.pid, tmp_path)
    assert report.startswith("server died of SIGSEGV; native stacks from its core (gdb):"), report
    assert "Thread 1" in report and "#0 " in report, report
    assert not list(tmp_path.glob("core*"))  # as large as the process was: deleted once read


def test_no_core_is_said_plainly(tmp_path: Path) -> None:
    report = native_stacks(-signal.SIGABRT, 12345, tmp_path)
    assert report.startswith(f"server died of SIGABRT; no core file in {tmp_path}")
