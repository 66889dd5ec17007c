"""What a test server that died of a signal leaves behind: every thread's native stack, not only Python's.

PYTHONFAULTHANDLER puts each Python thread's stack in the server's log, but a crash inside MLX usually happens
on one of MLX's own threads (its CPU stream runs every kernel), which has no Python frames: the log then shows
the engine thread waiting in `mx.eval` and nothing of the thread that crashed. So test servers may dump core
into their home (their working directory), and a crashed server's core is read with gdb where it is
installed: the stacks go into the log and the test output, and the core, which is as large as the process
was, is deleted. Where the system sends cores elsewhere (a `|` core_pattern, macOS's /cores) or gdb is
missing, the report says so instead.
"""

from __future__ import annotations

import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

GDB_SECONDS = 120


def allow_core_dumps() -> None:
    """In the child, before exec (a Popen preexec_fn): raise the core size limit to what the system allows."""
    _, hard = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))


def native_stacks(returncode: int, pid: int, directory: Path) -> str:
    """The report on a process killed by a signal (`returncode` is minus the signal): its core's native stacks,
    read from `directory` (its working directory) and then deleted, or why there are none."""
    name = signal.Signals(-returncode).name
    cores = [p for p in (directory / "core", directory / f"core.{pid}") if p.is_file()]
    if not cores:
        return f"server died of {name}; no core file in {directory} (see /proc/sys/kernel/core_pattern)"
    core = cores[0]
    try:
        gdb = shutil.which("gdb")
        if gdb is None:
            return f"server died of {name}; its core ({core.stat().st_size} bytes) not read: gdb is not installed"
        commands = ["-iex", "set auto-load python-scripts off", "-ex", "info threads", "-ex", "thread apply all bt 40"]
        command = [gdb, "--batch", "-nx", *commands, sys.executable, str(core)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=GDB_SECONDS)
        return f"server died of {name}; native stacks from its core (gdb):\n{result.stdout}{result.stderr}"
    finally:
        core.unlink()
