"""What the deployment tests share: the running deployment, its users, its inputs and the test DAGs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from support.headless_chromium import ChromiumPage
from support.jsonl import write_jsonl

from airflow_provider_xai_batch.emulator.process import EmulatorProcess
from benchmarks.airflow_deployment import AirflowDeployment, RestApi

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "example_dags"
EMULATOR_KEY = "xai-deployment-key-0123"
# Batches stay pending at this pace (one request per 1000 s) until a test releases them.
HOLD_RATE = 0.001
CHAT = {"model": "grok-4.3", "messages": [{"role": "user", "content": "Say hi"}]}
# The simple auth manager's users: an admin, and a viewer who may read DAGs but change nothing.
PASSWORDS = {"admin": "admin-password-0123", "viewer": "viewer-password-0123"}
AUTH_ENV = {
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
}

ERRORS_DAG_ID = "xai_errors_fail_fast"
ERRORS_DAG = f"""
import datetime

import pendulum
from airflow.sdk import DAG

from airflow_provider_xai_batch.operators.batch import XAIAddBatchRequestsOperator, XAICreateBatchOperator

with DAG(
    {ERRORS_DAG_ID!r},
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args={{"retries": 3, "retry_delay": datetime.timedelta(seconds=2)}},
) as dag:
    XAIAddBatchRequestsOperator(
        task_id="bad_input", batch_id="batch_never_used", requests=[{{"custom_id": "q1", "prompt": "no body"}}]
    )
    XAICreateBatchOperator(task_id="wrong_key", name="never-created", xai_conn_id="xai_wrong_key")
"""


# The batches page's DAG: a batch per run, held pending; its sensor defers, its export links back.
UI_DAG_ID = "xai_ui_batches"
UI_DAG = f"""
import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_xai_batch.operators.batch import XAIAddBatchRequestsOperator, XAICreateBatchOperator
from airflow_provider_xai_batch.operators.results import XAIBatchResultsOperator
from airflow_provider_xai_batch.sensors.batch import XAIBatchSensor

CHAT = {{"model": "grok-4.3", "messages": [{{"role": "user", "content": "Say hi"}}]}}

with DAG({UI_DAG_ID!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False) as dag:
    create = XAICreateBatchOperator(task_id="create", name="nightly-summaries")
    add = XAIAddBatchRequestsOperator(
        task_id="add", batch_id=create.output, requests=[{{"custom_id": f"q{{i}}", "body": CHAT}} for i in range(4)]
    )
    wait = XAIBatchSensor(
        task_id="wait", batch_id=create.output, poke_interval=1, timeout=600, deferrable=True
    )
    export = XAIBatchResultsOperator(
        task_id="export", batch_id=create.output, output_path=os.environ["XAI_UI_OUTPUT"] + "/{{{{ run_id }}}}"
    )
    add >> wait >> export
"""


def token_of(base_url: str, user: str) -> str:
    """A JWT for one of :data:`PASSWORDS`' users, as the UI's login form gets it."""
    answer = httpx.post(
        f"{base_url}/auth/token", json={"username": user, "password": PASSWORDS[user]}, timeout=60
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


class PasswordApi(RestApi):
    """The REST API as the simple auth manager's ``admin`` (no all-admins shortcut here)."""

    def login(self) -> None:
        self._http.headers["Authorization"] = f"Bearer {token_of(self.base_url, 'admin')}"


@dataclass
class Deployment:
    """The running deployment, its emulator, its users' tokens and where the examples read and write."""

    airflow: AirflowDeployment
    emulator: EmulatorProcess
    results: Path
    tokens: dict[str, str]

    def manifest(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return json.loads((self.results / dag_id / run_id / "manifest.json").read_text())

    def client(self, user: str | None) -> httpx.Client:
        """An HTTP client for the API server as ``user`` (``None``: anonymous)."""
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return httpx.Client(base_url=self.airflow.base_url, headers=headers, timeout=60)

    def browser_login(self, page: ChromiumPage, user: str) -> None:
        """What the UI's login leaves behind in the browser: the user's JWT in the ``_token`` cookie."""
        page.send("Network.enable")
        page.send(
            "Network.setCookie",
            name="_token",
            value=self.tokens[user],
            url=self.airflow.base_url,
            httpOnly=True,
        )


def write_inputs(root: Path) -> None:
    """The nightly example's two files (one request fails on purpose) and the fan-in's three shards."""
    for part in range(2):
        rows = [{"custom_id": f"n{part}-{i}", "body": CHAT} for i in range(4)]
        write_jsonl(root / "input" / f"part-{part}.jsonl", [*rows, {"body": CHAT | {"max_tokens": -1}}])
    for shard in range(3):
        write_jsonl(
            root / "shards" / f"shard-{shard}.jsonl",
            [{"body": CHAT | {"seed": shard * 10 + i}} for i in range(3)],
        )


def newest_airflow_only() -> Any:
    """Real processes run on the newest Airflow only (the oldest leg runs the in-process suite)."""
    import pytest
    from airflow import __version__

    major, minor = (int(part) for part in __version__.split(".")[:2])
    return pytest.mark.skipif((major, minor) < (3, 3), reason="real processes run on the newest Airflow only")
