"""A deferred sensor survives its triggerer being killed: real scheduler, workers and triggerers.

API server, scheduler (LocalExecutor), DAG processor and triggerer run as separate processes in a
temporary AIRFLOW_HOME; the emulator runs in its own process. The DAG creates a batch that takes
about 30 s, and its sensor defers. Once the trigger has polled, the triggerer is killed with
SIGKILL (a crash, not a clean stop) and a new one started. The task must finish exactly once:
success on its first try, one trigger event.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from support.batch_requests import chat_rows
from waiting_support import EmulatorProcess

pytestmark = [pytest.mark.airflow_processes, pytest.mark.slow]

DAG_ID = "xai_wait_restart"
DAG_SOURCE = """
from contextlib import closing
import pendulum
from airflow.sdk import DAG, task
from airflow_provider_xai_batch.hooks.xai import XAIBatchHook
from airflow_provider_xai_batch.sensors.batch import XAIBatchSensor

with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False) as dag:
    @task
    def make():
        with closing(XAIBatchHook()) as hook:
            batch_id = hook.create_batch("restart-test").batch_id
            hook.add_requests(batch_id, {requests!r})
        return batch_id

    wait = XAIBatchSensor(task_id="wait", batch_id=make(), poke_interval=1, timeout=300, deferrable=True)

    @task
    def done(batch):
        assert batch["status"] == "completed", batch

    done(wait.output)
"""
FIRED = "Trigger fired event"


def airflow_version() -> tuple[int, int]:
    from airflow import __version__

    major, minor = __version__.split(".")[:2]
    return int(major), int(minor)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float, logs: Path) -> Any:
    """Poll ``check`` until it returns something truthy; fail with the process logs otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    tails = "\n".join(
        f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}" for path in sorted(logs.glob("*.log"))
    )
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{tails}")


class Processes:
    """Airflow components as child processes, each in its own process group, always stopped."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.running: dict[str, tuple[subprocess.Popen[bytes], IO[bytes]]] = {}

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )

    def start(self, name: str, *args: str) -> None:
        log = (self.logs / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running[name] = (process, log)

    def kill(self, name: str, sig: int = signal.SIGTERM) -> None:
        process, log = self.running.pop(name)
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        log.close()

    def stop_all(self) -> None:
        for name in list(self.running):
            self.kill(name)


@pytest.fixture
def airflow_home(tmp_path: Path) -> Path:
    home = tmp_path / "airflow-home"
    (home / "dags").mkdir(parents=True)
    (home / "logs").mkdir()
    return home


@pytest.fixture
def emulator_process() -> Iterator[EmulatorProcess]:
    # 30 requests at 1 per second: long enough to kill and restart a triggerer in the middle.
    with EmulatorProcess(processing_rate=1) as emulator:
        yield emulator


def airflow_env(home: Path, emulator: EmulatorProcess, port: int) -> dict[str, str]:
    # Nothing from the test session's own Airflow settings (unit-test mode, its database) leaks in.
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            # A killed triggerer's triggers go to a live one after this many seconds of silence.
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "6",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW_CONN_XAI_DEFAULT": json.dumps(
                {"conn_type": "xai", "password": emulator.api_key, "host": emulator.url}
            ),
        }
    )
    return env


def query(database: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    if not database.exists():
        return []
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as connection:
        try:
            return connection.execute(sql, params).fetchall()
        except sqlite3.OperationalError:  # schema not there yet, or briefly locked
            return []


def trigger_logs(home: Path) -> dict[str, str]:
    """The sensor's trigger logs, one file per triggerer that ran its trigger."""
    return {
        path.name: path.read_text(errors="replace")
        for path in (home / "logs").rglob("attempt=*.log.trigger.*.log")
        if "task_id=wait" in str(path)
    }


@pytest.mark.skipif(airflow_version() < (3, 3), reason="runs real processes on the newest Airflow only")
@pytest.mark.timeout(420)
def test_deferred_sensor_survives_a_triggerer_crash(
    airflow_home: Path, emulator_process: EmulatorProcess, tmp_path: Path
) -> None:
    database = airflow_home / "airflow.db"
    logs = tmp_path / "process-logs"
    logs.mkdir()
    (airflow_home / "dags" / f"{DAG_ID}.py").write_text(
        DAG_SOURCE.format(dag_id=DAG_ID, requests=chat_rows(30))
    )
    processes = Processes(airflow_env(airflow_home, emulator_process, free_port()), logs)
    try:
        processes.run("db", "migrate")
        processes.start("api-server", "api-server")
        processes.start("scheduler", "scheduler")
        processes.start("dag-processor", "dag-processor")
        processes.start("triggerer-1", "triggerer")
        wait_for(
            "the DAG to be parsed",
            lambda: query(database, "SELECT 1 FROM dag WHERE dag_id = ? AND is_paused = 0", DAG_ID),
            120,
            logs,
        )
        processes.run("dags", "trigger", DAG_ID, timeout=120)

        wait_for(
            "the sensor to defer",
            lambda: query(
                database, "SELECT 1 FROM task_instance WHERE task_id = 'wait' AND state = 'deferred'"
            ),
            150,
            logs,
        )
        # The first triggerer has really taken the trigger over once it polls the batch
        # (the sensor itself reads the batch once before deferring).
        wait_for("the trigger to poll", lambda: emulator_process.calls("get_batch") >= 3, 60, logs)
        processes.kill("triggerer-1", signal.SIGKILL)
        polls_at_crash = emulator_process.calls("get_batch")
        assert query(database, "SELECT state FROM task_instance WHERE task_id = 'wait'") == [("deferred",)]

        processes.start("triggerer-2", "triggerer")
        wait_for(
            "the DAG run to finish",
            lambda: query(
                database, "SELECT state FROM dag_run WHERE dag_id = ? AND state != 'running'", DAG_ID
            ),
            180,
            logs,
        )
        rows = query(
            database, "SELECT task_id, state, try_number FROM task_instance WHERE dag_id = ?", DAG_ID
        )
        assert sorted(rows) == [("done", "success", 1), ("make", "success", 1), ("wait", "success", 1)]
        assert query(database, "SELECT state FROM dag_run WHERE dag_id = ?", DAG_ID) == [("success",)]
        assert emulator_process.calls("get_batch") > polls_at_crash  # the new triggerer took over
        # Both triggerers ran the trigger (one log each); only the second one fired, exactly once.
        runs = trigger_logs(airflow_home)
        assert len(runs) == 2, sorted(runs)
        assert sum(text.count(FIRED) for text in runs.values()) == 1
        assert emulator_process.calls("create_batch") == 1
    finally:
        processes.stop_all()
