"""The emulator's CLI as a child process on a free loopback port: for tests, benchmarks and demos.

An in-process :class:`~airflow_provider_xai_batch.emulator.EmulatorServer` shares the caller's
interpreter; a child process does not, so its work never competes with the caller's event loop or
GIL, and other processes (Airflow's workers and triggerers) reach it like the real service.

>>> with EmulatorProcess("local-key", processing_rate=5) as emulator:  # doctest: +SKIP
...     emulator.configure(processing_rate=0)
...     assert emulator.calls("create_batch") == 0
...     os.environ["AIRFLOW_CONN_XAI_DEFAULT"] = emulator.connection()
"""

from __future__ import annotations

import collections
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import httpx

from airflow_provider_xai_batch.emulator.config import connection_json

_LISTENING = re.compile(r"listening on (http://\S+)")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on at this moment (the OS picks it), e.g. for a server's ``--port``.

    >>> 0 < free_port() < 65536
    True
    """
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class EmulatorProcess:
    """``xai-batch-emulator`` in a child process, started on a free port and stopped cleanly.

    ``flags`` are the CLI's options by their Python name (``processing_rate=5`` becomes
    ``--processing-rate 5``; ``None`` leaves one out); ``args`` are further raw arguments. The
    child's output is read all along (so a chatty emulator never blocks on a full pipe), kept as
    a short tail for error messages and, with ``log_path``, written to that file.

    >>> emulator = EmulatorProcess("k", create_rate_limit=0).start()  # doctest: +SKIP
    >>> emulator.url  # doctest: +SKIP
    'http://127.0.0.1:40123'
    >>> emulator.stop()  # doctest: +SKIP
    """

    def __init__(
        self,
        api_key: str,
        *,
        host: str | None = "127.0.0.1",
        args: Sequence[str] = (),
        log_path: Path | None = None,
        env: Mapping[str, str] | None = None,
        start_timeout: float = 30.0,
        **flags: object,
    ) -> None:
        self.api_key = api_key
        self.host = host
        self.flags = dict(flags)
        self.args = list(args)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.start_timeout = start_timeout
        self.url = ""
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._listening = threading.Event()
        self._tail: collections.deque[str] = collections.deque(maxlen=200)

    # -- lifecycle ---------------------------------------------------------------------------------
    def command(self) -> list[str]:
        """The command line the child runs (port 0: the emulator binds a free port itself)."""
        command = [sys.executable, "-m", "airflow_provider_xai_batch.emulator"]
        if self.host is not None:  # None: the CLI's own default (loopback)
            command += ["--host", self.host]
        command += ["--port", "0", "--api-key", self.api_key]
        for name, value in self.flags.items():
            if value is not None:
                command += [f"--{name.replace('_', '-')}", str(value)]
        return [*command, *self.args]

    def start(self) -> EmulatorProcess:
        """Start the child and wait until it listens; raise ``RuntimeError`` with its output if not."""
        if self._process is not None:
            raise RuntimeError("this emulator process was started already")
        self._process = subprocess.Popen(
            self.command(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
        )
        self._reader = threading.Thread(target=self._read_output, name="emulator-output", daemon=True)
        self._reader.start()
        # The reader sets the event on the "listening on" line, and also at end of output, so a
        # child that exits early is noticed at once rather than after the timeout.
        self._listening.wait(self.start_timeout)
        if not self.url:
            output = self.output()
            self.stop()
            raise RuntimeError(f"the emulator process did not start listening:\n{output[-2000:]}")
        return self

    def _read_output(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        log: IO[str] | None = self.log_path.open("a") if self.log_path is not None else None
        try:
            for line in self._process.stdout:
                self._tail.append(line)
                if log is not None:
                    log.write(line)
                    log.flush()
                if not self.url and (match := _LISTENING.search(line)):
                    self.url = match.group(1)
                    self._listening.set()
        finally:
            self._listening.set()
            if log is not None:
                log.close()

    def stop(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL after 10 s), reap it and close its pipe."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if self._reader is not None:
            self._reader.join(10)
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        """The child's process id (for CPU time and memory readings)."""
        if self._process is None:
            raise RuntimeError("the emulator process has not been started")
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        """The child's exit status once it has ended (0 after a clean stop), else None."""
        return None if self._process is None else self._process.poll()

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def output(self) -> str:
        """The last lines the child wrote (stdout and stderr together)."""
        return "".join(self._tail)

    # -- talking to it -----------------------------------------------------------------------------
    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def connection(self, api_key: str | None = None, **extra: Any) -> str:
        """An ``xai`` Airflow connection to this emulator as JSON, for ``AIRFLOW_CONN_...``."""
        return connection_json(self.url, self.api_key if api_key is None else api_key, extra)

    def http(self, timeout: float = 60.0) -> httpx.Client:
        """An HTTP client for this emulator, authenticated with its key; close it (``with``)."""
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=timeout)

    def get(self, path: str, **params: Any) -> Any:
        """``GET path`` (an API or ``/_emulator`` route); the decoded JSON answer."""
        with self.http() as client:
            answer = client.get(path, params=params or None)
            answer.raise_for_status()
            return answer.json()

    def configure(self, **changes: Any) -> None:
        """Change the emulator's settings while it runs (``processing_rate=0`` releases held batches)."""
        with self.http() as client:
            client.patch("/_emulator/config", json=changes).raise_for_status()

    def stats(self) -> dict[str, Any]:
        """Calls and answers so far, by route (``/_emulator/stats``)."""
        return dict(self.get("/_emulator/stats"))

    def calls(self, route: str) -> int:
        """How many calls a route (``get_batch``, ``add_requests`` ...) has had."""
        return int(self.stats()["calls"].get(route, 0))
