"""A real Airflow deployment on loopback for tests, every component a process of its own.

API server, scheduler(s), DAG processor(s), triggerer(s) (and Celery workers when the executor is
Celery) run as separate processes in a temporary AIRFLOW_HOME, each in its own process group with
its own log; the xAI emulator runs as a process too. Everything is stopped, and leftovers swept,
even when the test fails. Executor, database URL, broker URL and process counts are settings, so
a CeleryExecutor deployment (PostgreSQL, Redis, two workers, two triggerers) reuses this module:

>>> settings = DeploymentSettings(  # doctest: +SKIP
...     executor="CeleryExecutor",
...     database_url="postgresql+psycopg2://airflow:airflow@127.0.0.1:5432/airflow",
...     broker_url="redis://127.0.0.1:6379/0",
...     celery_workers=2,
...     triggerers=2,
... )
>>> with AirflowDeployment(tmp_path, settings) as airflow:  # doctest: +SKIP
...     emulator = EmulatorProcess(airflow.processes, api_key="k").start()
...     airflow.env["AIRFLOW_CONN_XAI_DEFAULT"] = emulator.connection()
...     airflow.start()
...     run = airflow.api.trigger("my_dag")
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from managed_processes import ManagedProcesses, wait_until

AIRFLOW = [sys.executable, "-m", "airflow"]
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class DeploymentSettings:
    """What kind of deployment: executor, metadata database, broker, how many of each process."""

    executor: str = "LocalExecutor"
    database_url: str | None = None  # None: SQLite in the Airflow home
    broker_url: str | None = None  # CeleryExecutor only
    schedulers: int = 1
    dag_processors: int = 1
    triggerers: int = 1
    celery_workers: int = 0
    parallelism: int = 4
    # A killed triggerer's triggers move to a live one after this many seconds without a heartbeat.
    triggerer_health_seconds: int = 6
    extra_env: dict[str, str] = field(default_factory=dict)


class RestApi:
    """The public REST API (v2) and the UI's own endpoints, with a token from the auth manager."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._http = httpx.Client(base_url=base_url, timeout=60)

    def login(self) -> None:
        # The simple auth manager hands out an admin token when every user is an admin.
        answer = self._http.get("/auth/token")
        answer.raise_for_status()
        self._http.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, **params: Any) -> Any:
        answer = self._http.get(path, params=params or None)
        answer.raise_for_status()
        return answer.json()

    def post(self, path: str, body: Mapping[str, Any], attempts: int = 3) -> Any:
        # On SQLite a write can lose the database lock under load; the API server then answers 500
        # and has rolled the transaction back, so sending it again is safe.
        for attempt in range(1, attempts + 1):
            answer = self._http.post(path, json=dict(body))
            if answer.status_code < 500 or attempt == attempts:
                break
        if answer.is_error:
            raise AssertionError(f"POST {path} -> {answer.status_code}: {answer.text}")
        return answer.json()

    def healthy(self) -> bool:
        try:
            return self._http.get("/api/v2/monitor/health").status_code == 200
        except httpx.HTTPError:
            return False

    def dag_ids(self) -> set[str]:
        return {dag["dag_id"] for dag in self.get("/api/v2/dags", limit=1000)["dags"]}

    def import_errors(self) -> list[dict[str, Any]]:
        return list(self.get("/api/v2/importErrors")["import_errors"])

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Start a run as the UI's Trigger button does: no logical date."""
        body = {"logical_date": None, "conf": dict(conf or {})}
        return dict(self.post(f"/api/v2/dags/{dag_id}/dagRuns", body))

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.get(f"/api/v2/dags/{dag_id}/dagRuns", limit=100)["dag_runs"])

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}"))

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        found = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=1000)
        return list(found["task_instances"])

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        answer = self._http.get(path, params={"map_index": map_index}, headers={"Accept": "application/json"})
        answer.raise_for_status()
        content = answer.json()["content"]
        if not isinstance(content, list):
            return str(content)
        lines = []
        for line in content:  # structured lines: the event, and an exception's type and message
            if not isinstance(line, dict):
                lines.append(str(line))
                continue
            lines.append(str(line.get("event", "")))
            for error in line.get("error_detail") or []:
                lines.append(f"{error.get('exc_type')}: {error.get('exc_value')}")
        return "\n".join(lines)


class AirflowDeployment:
    """Airflow's components as processes in ``root``; a context manager that always stops them."""

    def __init__(
        self, root: Path, settings: DeploymentSettings | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        self.root = root
        self.settings = settings or DeploymentSettings()
        self.home = root / "airflow-home"
        self.dags_folder = self.home / "dags"
        self.task_log_folder = self.home / "logs"
        for folder in (self.dags_folder, self.task_log_folder):
            folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.processes = ManagedProcesses(root / "process-logs")
        self.env = self._environment(dict(env or {}))
        self.api = RestApi(self.base_url)
        self._counts: dict[str, int] = {}

    def _environment(self, extra: dict[str, str]) -> dict[str, str]:
        # Nothing of the test session's own Airflow settings (unit-test mode, its database) leaks in.
        env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
        settings = self.settings
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": settings.executor,
                "AIRFLOW__CORE__PARALLELISM": str(settings.parallelism),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                # SQLite allows one writer at a time: wait for the lock rather than fail a request.
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
                    settings.database_url or f"sqlite:///{self.home / 'airflow.db'}?timeout=15"
                ),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(
                    settings.triggerer_health_seconds
                ),
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.task_log_folder),
                # Test machines are small and shared: a slow answer from the API server must not fail a task.
                "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
            }
        )
        if settings.broker_url:
            env["AIRFLOW__CELERY__BROKER_URL"] = settings.broker_url
            env["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        env.update(settings.extra_env)
        env.update(extra)
        return env

    # -- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> AirflowDeployment:
        # Starting is a separate step: processes such as the emulator may need to run first.
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Migrate the database, start every component, wait for the API and log in."""
        self.airflow_command("db", "migrate", timeout=300)
        self.start_component("api-server")
        # Workers report to the API server: no task may start before it answers.
        self.wait_for("the API server to answer", self.api.healthy, 180)
        self.api.login()
        for _ in range(self.settings.schedulers):
            self.start_component("scheduler")
        for _ in range(self.settings.dag_processors):
            self.start_component("dag-processor")
        for _ in range(self.settings.triggerers):
            self.start_component("triggerer")
        for _ in range(self.settings.celery_workers):
            self.start_component("celery-worker")

    def stop(self) -> None:
        self.api.close()
        self.processes.stop_all()

    def start_component(self, kind: str) -> str:
        """Start one more component of ``kind``; its name is ``<kind>-<n>``."""
        number = self._counts.get(kind, 0) + 1
        self._counts[kind] = number
        name = f"{kind}-{number}"
        if kind == "celery-worker":
            args = ["celery", "worker", "--concurrency", "2", "--celery-hostname", f"{name}@%h"]
        else:
            args = [kind]
        self.processes.start(name, [*AIRFLOW, *args], env=self.env)
        return name

    def kill(self, name: str) -> None:
        """SIGKILL a component's whole process group: a crash, no clean shutdown."""
        self.processes.kill(name)

    def airflow_command(self, *args: str, timeout: float = 120) -> str:
        """Run an ``airflow`` CLI command to its end; its output (it fails the test if it fails)."""
        name = "cli-" + "-".join(re.sub(r"\W", "", arg) for arg in args[:2])
        self.processes.start(name, [*AIRFLOW, *args], env=self.env)
        code = self.processes.wait(name, timeout)
        output = self.processes.log_text(name)
        if code != 0:
            raise AssertionError(f"airflow {' '.join(args)} exited with {code}:\n{output[-4000:]}")
        return output

    # -- waiting and reporting -----------------------------------------------------------------------
    def wait_for(self, what: str, check: Any, timeout: float, interval: float = 1.0) -> Any:
        """Poll ``check`` until truthy; on timeout fail with every process's log."""
        return wait_until(what, check, timeout, on_timeout=self.failure_report, interval=interval)

    def wait_for_dags(self, dag_ids: set[str], timeout: float = 180) -> None:
        def parsed() -> bool:
            errors = self.api.import_errors()
            if errors:
                raise AssertionError(f"DAG import errors: {json.dumps(errors, indent=1)}")
            return dag_ids <= self.api.dag_ids()

        self.wait_for(f"DAGs {sorted(dag_ids)} to be parsed", parsed, timeout)

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 240) -> dict[str, Any]:
        """Wait for a run to end (success or failed); the run."""
        return dict(
            self.wait_for(
                f"run {run_id} of {dag_id} to end",
                lambda: (run := self.api.run(dag_id, run_id))["state"] in ("success", "failed") and run,
                timeout,
                interval=1,
            )
        )

    def failure_report(self) -> str:
        """Every process's log tail and the newest task logs: what a failing test should show."""
        task_logs = sorted(
            self.task_log_folder.glob("dag_id=*/**/*.log"), key=lambda path: path.stat().st_mtime
        )[-6:]
        parts = [self.processes.log_tails()]
        for path in task_logs:
            text = path.read_text(errors="replace")
            parts.append(f"----- task log {path.relative_to(self.task_log_folder)} -----\n{text[-3000:]}")
        return "\n".join(parts)

    def task_log_files(self, dag_id: str, task_id: str) -> Iterator[Path]:
        for path in self.task_log_folder.rglob("*.log"):
            if f"dag_id={dag_id}" in str(path) and f"task_id={task_id}" in str(path):
                yield path


class EmulatorProcess:
    """The xAI emulator's CLI as a process of the deployment's process set."""

    def __init__(self, processes: ManagedProcesses, api_key: str, **flags: Any) -> None:
        self.processes = processes
        self.api_key = api_key
        self.flags = {"create_rate_limit": 0, "add_rate_limit": 0, **flags}
        self.url = ""

    def start(self) -> EmulatorProcess:
        command = [sys.executable, "-m", "airflow_provider_xai_batch.emulator", "--port", "0"]
        command += ["--api-key", self.api_key]
        for name, value in self.flags.items():
            command += [f"--{name.replace('_', '-')}", str(value)]
        self.processes.start("emulator", command)

        def listening() -> str:
            match = re.search(r"listening on (http://\S+)", self.processes.log_text("emulator"))
            return match.group(1) if match else ""

        self.url = wait_until("the emulator to listen", listening, 30, on_timeout=self.processes.log_tails)
        return self

    def connection(self, api_key: str | None = None) -> str:
        """An ``xai`` connection to this emulator as JSON, for an ``AIRFLOW_CONN_...`` variable."""
        key = self.api_key if api_key is None else api_key
        return json.dumps({"conn_type": "xai", "password": key, "host": self.url})

    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=30
        )

    def configure(self, **changes: Any) -> None:
        with self.http() as client:
            client.patch("/_emulator/config", json=changes).raise_for_status()

    def stats(self) -> dict[str, Any]:
        with self.http() as client:
            return dict(client.get("/_emulator/stats").json())

    def calls(self, route: str) -> int:
        return int(self.stats()["calls"].get(route, 0))
