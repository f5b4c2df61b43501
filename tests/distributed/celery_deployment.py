"""Airflow on the CeleryExecutor, every component a process of its own, all on loopback.

API server, scheduler, DAG processor, Celery workers and triggerers run in a temporary
AIRFLOW_HOME with a PostgreSQL metadata database and Celery result backend and a Redis broker
(see :mod:`distributed_services`). Each process has its own process group and log file and is
stopped (its whole group) when the deployment closes, also when the test fails.

Each process reports its own name as its host name (``XAI_TEST_PROCESS``), so the metadata
database tells which worker ran a task instance and which triggerer holds a trigger.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
from distributed_services import PostgresDatabase, RedisIndex

HOSTNAME_MODULE = """
import os
import socket


def hostname():
    return os.environ.get("XAI_TEST_PROCESS") or socket.getfqdn()
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Running:
    name: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    log_path: Path


@dataclass
class CeleryDeployment:
    """The processes of one Celery deployment of Airflow; use as a context manager."""

    home: Path
    database: PostgresDatabase
    broker: RedisIndex
    extra_env: dict[str, str] = field(default_factory=dict)
    worker_concurrency: int = 2
    running: dict[str, Running] = field(default_factory=dict)
    stopped: list[Running] = field(default_factory=list)

    def __post_init__(self) -> None:
        (self.home / "dags").mkdir(parents=True, exist_ok=True)
        (self.home / "logs").mkdir(exist_ok=True)
        (self.home / "process-logs").mkdir(exist_ok=True)
        support = self.home / "support"
        support.mkdir(exist_ok=True)
        (support / "xai_test_hostname.py").write_text(HOSTNAME_MODULE)
        self.port = free_port()
        self.fernet_key = _fernet_key()
        self.env = self._env(support)

    def _env(self, support: Path) -> dict[str, str]:
        # Nothing of the test session's own Airflow settings (unit-test mode, SQLite) leaks in.
        env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(support), env.get("PYTHONPATH", "")]))
        port = self.port
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.home / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CORE__PARALLELISM": "8",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "xai_test_hostname.hostname",
                "AIRFLOW__CORE__FERNET_KEY": self.fernet_key,
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.database.sqlalchemy_url,
                "AIRFLOW__CELERY__BROKER_URL": self.broker.url,
                "AIRFLOW__CELERY__RESULT_BACKEND": self.database.celery_result_backend,
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
                "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(port),
                "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
                # A worker killed under its tasks is noticed once their heartbeats stop for this long.
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                # A killed triggerer's triggers go to a live one after this many seconds of silence.
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "6",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            }
        )
        env.update(self.extra_env)
        return env

    # -- processes -------------------------------------------------------------------------------
    def airflow(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        """Run an ``airflow`` command to completion (``db migrate``, ``dags trigger`` ...)."""
        return subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )

    def start(self, name: str, *args: str) -> None:
        """Start ``airflow ARGS`` as the process ``name``, in a process group of its own."""
        log_path = self.home / "process-logs" / f"{name}-{len(self.stopped)}.log"
        log = log_path.open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "airflow", *args],
            env={**self.env, "XAI_TEST_PROCESS": name},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running[name] = Running(name, process, log, log_path)

    def start_worker(self, name: str) -> None:
        self.start(
            name,
            "celery",
            "worker",
            "--celery-hostname",
            f"{name}@%h",
            "--concurrency",
            str(self.worker_concurrency),
            "--skip-serve-logs",
            "--without-mingle",
            "--without-gossip",
        )

    def start_triggerer(self, name: str) -> None:
        self.start(name, "triggerer", "--skip-serve-logs")

    def kill(self, name: str, sig: int = signal.SIGTERM) -> None:
        """Send ``sig`` to the process group ``name``; make sure it is gone (SIGKILL after 30 s)."""
        running = self.running.pop(name)
        if running.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(running.process.pid, sig)
            try:
                running.process.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(running.process.pid, signal.SIGKILL)
                running.process.wait(10)
        # A worker's forked children share its group; make sure none outlives it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(running.process.pid, signal.SIGKILL)
        running.log.close()
        self.stopped.append(running)

    def stop_all(self) -> None:
        for name in list(self.running):
            self.kill(name)

    def __enter__(self) -> CeleryDeployment:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_all()

    # -- reading the deployment ------------------------------------------------------------------
    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        try:
            return self.database.query(sql, *params)
        except Exception as exc:  # schema not there yet
            if "does not exist" in str(exc):
                return []
            raise

    def process_logs(self) -> dict[str, str]:
        return {
            path.name: path.read_text(errors="replace")
            for path in sorted((self.home / "process-logs").glob("*.log"))
        }

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float) -> Any:
        """Poll ``check`` until it returns something truthy; fail with the process logs otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            for running in self.running.values():
                if running.process.poll() is not None:
                    self._fail(
                        f"{running.name} exited ({running.process.returncode}) while waiting for {what}"
                    )
            time.sleep(0.5)
        self._fail(f"timed out after {timeout:.0f}s waiting for {what}")

    def _fail(self, message: str) -> None:
        tails = "\n".join(f"--- {name}\n{text[-4000:]}" for name, text in self.process_logs().items())
        pytest.fail(f"{message}\n{tails}")

    def all_text(self) -> bytes:
        """Every log the deployment wrote: process logs and task/trigger logs."""
        parts: list[bytes] = []
        for root in (self.home / "process-logs", self.home / "logs"):
            for path in root.rglob("*"):
                if path.is_file():
                    parts.append(path.read_bytes())
        return b"\n".join(parts)

    def decrypt(self, value: str | bytes) -> bytes:
        from cryptography.fernet import Fernet

        token = value.encode() if isinstance(value, str) else value
        return Fernet(self.fernet_key.encode()).decrypt(token)


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def connection_json(**fields: Any) -> str:
    return json.dumps(fields)


@contextlib.contextmanager
def celery_deployment(
    home: Path, database: PostgresDatabase, broker: RedisIndex, extra_env: dict[str, str]
) -> Iterator[CeleryDeployment]:
    deployment = CeleryDeployment(home, database, broker, extra_env)
    with deployment:
        yield deployment


class EmulatorService:
    """The emulator's CLI in a process of its own: the xAI service of the deployment."""

    def __init__(self, api_key: str, **flags: Any) -> None:
        self.api_key = api_key
        self.flags = flags
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> EmulatorService:
        import re

        command = [sys.executable, "-m", "airflow_provider_xai_batch.emulator", "--port", "0"]
        command += ["--api-key", self.api_key]
        for name, value in self.flags.items():
            command += [f"--{name.replace('_', '-')}", str(value)]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        match = re.search(r"(http://\S+)", line)
        if not match:
            self.__exit__()
            raise RuntimeError(f"the emulator did not start: {line!r}")
        self.url = match.group(1)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
        if self._process is not None and self._process.stdout is not None:
            self._process.stdout.close()

    def _http(self) -> Any:
        import httpx

        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=60
        )

    def get(self, path: str, **params: Any) -> Any:
        with self._http() as client:
            answer = client.get(path, params=params)
            answer.raise_for_status()
            return answer.json()

    def configure(self, **changes: Any) -> None:
        with self._http() as client:
            client.patch("/_emulator/config", json=changes).raise_for_status()

    def stats(self) -> dict[str, Any]:
        return dict(self.get("/_emulator/stats"))

    def calls(self, route: str) -> int:
        return int(self.stats()["calls"].get(route, 0))
