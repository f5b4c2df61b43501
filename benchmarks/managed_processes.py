"""Child processes for tests: one process group each, one log file each, nothing left behind.

Every process started here carries a marker in its environment, and so does everything it starts
(task runners, trigger runners, gunicorn/uvicorn workers). Stopping sends SIGTERM to each process
group, then SIGKILL to whatever is still alive, then sweeps every process that still carries the
marker, so a crashed test leaves no Airflow component running behind it.

>>> import sys, tempfile
>>> with ManagedProcesses(Path(tempfile.mkdtemp())) as processes:
...     _ = processes.start("hello", [sys.executable, "-c", "print('hi')"])
...     processes.wait("hello", timeout=30)
...     processes.log_text("hello").strip()
0
'hi'
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psutil

MARKER = "XAI_TEST_PROCESS_SET"


@dataclass
class ManagedProcess:
    """One running child: its ``Popen``, the log it writes, and the name tests call it by."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None


class ManagedProcesses:
    """Start, kill and stop named child processes; collect their logs for failure messages."""

    def __init__(self, log_dir: Path, stop_grace_seconds: float = 15) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.stop_grace_seconds = stop_grace_seconds
        self.marker = uuid.uuid4().hex
        self.running: dict[str, ManagedProcess] = {}
        self.finished: dict[str, ManagedProcess] = {}

    def __enter__(self) -> ManagedProcesses:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_all()

    # -- starting and stopping ---------------------------------------------------------------------
    def start(
        self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> ManagedProcess:
        """Start ``argv`` in a new session (its own process group), output to ``<name>.log``."""
        if name in self.running:
            raise ValueError(f"a process named {name!r} is already running")
        log_path = self.log_dir / f"{name}.log"
        log_file = log_path.open("ab")
        environment = {**(os.environ if env is None else env), MARKER: self.marker}
        popen = subprocess.Popen(
            list(argv),
            env=environment,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        process = ManagedProcess(name, popen, log_path, log_file)
        self.running[name] = process
        return process

    def wait(self, name: str, timeout: float) -> int:
        """Wait for a process to end on its own; its exit code."""
        process = self.running[name]
        code = process.popen.wait(timeout)
        self._retire(name)
        return code

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the process's whole group at once (SIGKILL: a crash, no clean-up)."""
        process = self.running[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.popen.pid, sig)
        if sig == signal.SIGKILL:
            process.popen.wait(30)
            self._retire(name)

    def stop(self, name: str) -> None:
        """SIGTERM the group, then SIGKILL it if it has not ended within the grace period."""
        process = self.running[name]
        if process.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(self.stop_grace_seconds)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.popen.pid, signal.SIGKILL)  # stragglers left in the group
        if process.alive:
            process.popen.wait(30)
        self._retire(name)

    def stop_all(self) -> None:
        """SIGTERM every group at once, SIGKILL what outlives the grace period, sweep the rest."""
        for process in self.running.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_grace_seconds
        for name in list(self.running):
            with contextlib.suppress(Exception):
                self.running[name].popen.wait(max(0.0, deadline - time.monotonic()))
            with contextlib.suppress(Exception):
                self.stop(name)  # SIGKILLs the group if anything in it is still alive
        self.sweep()

    def sweep(self) -> list[str]:
        """SIGKILL every process that still carries this set's marker; what was found."""
        found = self.leftovers()
        for process in found:
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(found, timeout=10)
        return [f"{process.pid} {_describe(process)}" for process in found]

    def leftovers(self) -> list[psutil.Process]:
        """Live processes started (directly or not) by this set."""
        found = []
        for process in psutil.process_iter(["pid"]):
            if process.pid == os.getpid():
                continue
            with contextlib.suppress(psutil.Error):
                if process.environ().get(MARKER) == self.marker and process.status() != psutil.STATUS_ZOMBIE:
                    found.append(process)
        return found

    def _retire(self, name: str) -> None:
        process = self.running.pop(name)
        process.log_file.close()
        self.finished[name] = process

    # -- logs ----------------------------------------------------------------------------------------
    def log_text(self, name: str) -> str:
        process = self.running.get(name) or self.finished[name]
        return process.log_path.read_text(errors="replace")

    def log_tails(self, chars: int = 4000) -> str:
        """The end of every process's log, each under a header, for a failure message."""
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            text = path.read_text(errors="replace")
            state = "running" if path.stem in self.running else "ended"
            parts.append(
                f"----- {path.stem} ({state}), last {min(chars, len(text))} chars -----\n{text[-chars:]}"
            )
        return "\n".join(parts)


def wait_until(what: str, check: Any, timeout: float, on_timeout: Any = None, interval: float = 0.5) -> Any:
    """Poll ``check()`` until it returns something truthy and return that.

    On timeout raise ``TimeoutError`` naming ``what``, with ``on_timeout()``'s text (process logs).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            details = on_timeout() if on_timeout is not None else ""
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}\n{details}")
        time.sleep(interval)


def _describe(process: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return " ".join(process.cmdline())[:200]
    return "?"
