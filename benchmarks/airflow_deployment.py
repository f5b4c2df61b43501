"""A real Airflow deployment on loopback for tests and benchmarks, every component a process of its own.

API server, scheduler(s), DAG processor(s), triggerer(s) (and Celery workers when the executor is
Celery) run as separate processes in a temporary AIRFLOW_HOME, each in its own process group with
its own log; the xAI emulator runs as a process too. Everything is stopped, and leftovers swept,
even when the test fails. Executor, database URL, broker URL and process counts are settings; one
harness serves the LocalExecutor (SQLite) and the CeleryExecutor (PostgreSQL, Redis, two workers,
two triggerers: :func:`celery_deployment` starts it with its services):

>>> with AirflowDeployment(tmp_path) as airflow:  # doctest: +SKIP
...     emulator = airflow.start_emulator("k", processing_rate=1)
...     airflow.env["AIRFLOW_CONN_XAI_DEFAULT"] = emulator.connection()
...     airflow.start()
...     run = airflow.api.trigger("my_dag")
>>> with celery_deployment(tmp_path, extra_env=connections) as airflow:  # doctest: +SKIP
...     airflow.start()
...     airflow.kill("celery-worker-1")  # a crash: SIGKILL to its whole process group

Each process reports its own name (``scheduler-1``, ``celery-worker-2``, ``triggerer-1`` ...) as its
host name, so the metadata database tells which worker ran a task instance and which triggerer
holds a trigger.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from airflow_provider_xai_batch.emulator.process import EmulatorProcess, free_port
from benchmarks.distributed_services import PostgresDatabase, RedisIndex, postgres_database, redis_index
from benchmarks.managed_processes import MARKER, ManagedProcesses, wait_until

AIRFLOW = [sys.executable, "-m", "airflow"]
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
# Put on the processes' PYTHONPATH and named as Airflow's host name callable: each process
# reports the name it was started under.
HOSTNAME_MODULE = """
import os
import socket


def hostname():
    return os.environ.get("XAI_TEST_PROCESS") or socket.getfqdn()
"""


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
    worker_concurrency: int = 2
    parallelism: int = 4
    # Each process's host name is its own name; off, Airflow's default (the machine's name).
    process_hostnames: bool = False
    # Off (``--skip-serve-logs``), several workers and triggerers can share one machine: each
    # would otherwise bind the same log-serving port.
    serve_logs: bool = True
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
        self,
        root: Path,
        settings: DeploymentSettings | None = None,
        env: Mapping[str, str] | None = None,
        database: PostgresDatabase | None = None,
        broker: RedisIndex | None = None,
    ) -> None:
        self.root = root
        self.settings = settings or DeploymentSettings()
        self.database = database
        self.broker = broker
        self.home = root / "airflow-home"
        self.dags_folder = self.home / "dags"
        self.task_log_folder = self.home / "logs"
        # Modules the processes import besides the DAGs (the host name callable, a test's triggers).
        self.python_path = self.home / "support"
        for folder in (self.dags_folder, self.task_log_folder, self.python_path):
            folder.mkdir(parents=True, exist_ok=True)
        (self.python_path / "xai_test_hostname.py").write_text(HOSTNAME_MODULE)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.fernet_key = _fernet_key()
        self.processes = ManagedProcesses(root / "process-logs")
        self.env = self._environment(dict(env or {}))
        self.api = RestApi(self.base_url)
        self.emulators: list[EmulatorProcess] = []
        self._counts: dict[str, int] = {}

    def _environment(self, extra: dict[str, str]) -> dict[str, str]:
        # Nothing of the test session's own Airflow settings (unit-test mode, its database) leaks in.
        env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.python_path), env.get("PYTHONPATH", "")]))
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
                # Connections in trigger rows are encrypted with it; a test can decrypt them.
                "AIRFLOW__CORE__FERNET_KEY": self.fernet_key,
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
        if settings.process_hostnames:
            env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] = "xai_test_hostname.hostname"
        if settings.broker_url:
            env["AIRFLOW__CELERY__BROKER_URL"] = settings.broker_url
            env["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
            env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = str(settings.worker_concurrency)
            env["AIRFLOW__CELERY__SYNC_PARALLELISM"] = "1"
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
        for emulator in self.emulators:
            emulator.stop()
        self.processes.stop_all()

    def start_emulator(self, api_key: str, **flags: object) -> EmulatorProcess:
        """The emulator as the deployment's xAI service, rate limits off unless ``flags`` set them.

        Its log sits beside the components' (in failure reports), and it is stopped with them.
        """
        emulator = EmulatorProcess(
            api_key,
            log_path=self.processes.log_dir / "emulator.log",
            env={**os.environ, MARKER: self.processes.marker},
            create_rate_limit=0,
            add_rate_limit=0,
        )
        emulator.flags.update(flags)
        self.emulators.append(emulator)
        return emulator.start()

    def start_component(self, kind: str) -> str:
        """Start one more component of ``kind``; its name is ``<kind>-<n>``."""
        number = self._counts.get(kind, 0) + 1
        self._counts[kind] = number
        name = f"{kind}-{number}"
        skip_serve_logs = [] if self.settings.serve_logs else ["--skip-serve-logs"]
        if kind == "celery-worker":
            args = ["celery", "worker", "--concurrency", str(self.settings.worker_concurrency)]
            args += ["--celery-hostname", f"{name}@%h", "--without-mingle", "--without-gossip"]
            args += skip_serve_logs
        elif kind == "triggerer":
            args = [kind, *skip_serve_logs]
        else:
            args = [kind]
        self.processes.start(name, [*AIRFLOW, *args], env={**self.env, "XAI_TEST_PROCESS": name})
        return name

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to a component's whole process group (SIGKILL: a crash, no clean shutdown)."""
        self.processes.kill(name, sig)

    def restart(self, name: str) -> str:
        """Stop a component cleanly (SIGTERM) and start another of its kind; the new one's name."""
        self.processes.stop(name)
        return self.start_component(name.rsplit("-", 1)[0])

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

    def process_logs(self) -> dict[str, str]:
        """Every process's log by process name."""
        return {
            path.stem: path.read_text(errors="replace")
            for path in sorted(self.processes.log_dir.glob("*.log"))
        }

    def all_logs(self) -> bytes:
        """Every log the deployment wrote, process logs and task/trigger logs: what a leak check searches."""
        parts: list[bytes] = []
        for root in (self.processes.log_dir, self.task_log_folder):
            parts.extend(path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file())
        return b"\n".join(parts)

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows from the PostgreSQL metadata database (none while its schema is not there yet)."""
        if self.database is None:
            raise RuntimeError("only a deployment on PostgreSQL can be queried")
        try:
            return self.database.query(sql, *params)
        except Exception as exc:
            if "does not exist" in str(exc):
                return []
            raise

    def decrypt(self, value: str | bytes) -> bytes:
        """A value Airflow encrypted with this deployment's Fernet key (a trigger's kwargs)."""
        from cryptography.fernet import Fernet

        token = value.encode() if isinstance(value, str) else value
        return Fernet(self.fernet_key.encode()).decrypt(token)

    def task_log_files(self, dag_id: str, task_id: str) -> Iterator[Path]:
        for path in self.task_log_folder.rglob("*.log"):
            if f"dag_id={dag_id}" in str(path) and f"task_id={task_id}" in str(path):
                yield path


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


@contextlib.contextmanager
def celery_deployment(
    root: Path,
    extra_env: Mapping[str, str] | None = None,
    *,
    workers: int = 2,
    triggerers: int = 2,
    worker_concurrency: int = 2,
    parallelism: int = 8,
) -> Iterator[AirflowDeployment]:
    """Airflow on the CeleryExecutor with its services, not yet started (call ``start()``).

    A fresh PostgreSQL database (metadata and Celery results) and a Redis index (the broker) of
    its own, both gone afterwards; ``workers`` Celery workers and ``triggerers`` triggerers, each
    reporting its process name as host name. A task whose worker dies is noticed within 20 s.

    >>> with celery_deployment(tmp_path, {"AIRFLOW_CONN_XAI_DEFAULT": conn}) as airflow:  # doctest: +SKIP
    ...     airflow.start()
    ...     airflow.query("SELECT state FROM dag_run")
    """
    with postgres_database() as database, redis_index() as broker:
        settings = DeploymentSettings(
            executor="CeleryExecutor",
            database_url=database.sqlalchemy_url,
            broker_url=broker.url,
            triggerers=triggerers,
            celery_workers=workers,
            worker_concurrency=worker_concurrency,
            parallelism=parallelism,
            process_hostnames=True,
            serve_logs=False,
            extra_env={
                # A worker killed under its tasks is noticed once their heartbeats stop for this long.
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            },
        )
        with AirflowDeployment(root, settings, env=extra_env, database=database, broker=broker) as airflow:
            yield airflow
