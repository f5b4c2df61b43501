"""What the deployment tests share: the running deployment, its inputs and a DAG that must fail fast."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.jsonl import write_jsonl

from airflow_provider_xai_batch.emulator.process import EmulatorProcess
from benchmarks.airflow_deployment import AirflowDeployment

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "example_dags"
EMULATOR_KEY = "xai-deployment-key-0123"
# Batches stay pending at this pace (one request per 1000 s) until a test releases them.
HOLD_RATE = 0.001
CHAT = {"model": "grok-4.3", "messages": [{"role": "user", "content": "Say hi"}]}

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


@dataclass
class Deployment:
    """The running deployment, its emulator and where the examples read and write."""

    airflow: AirflowDeployment
    emulator: EmulatorProcess
    results: Path

    def manifest(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return json.loads((self.results / dag_id / run_id / "manifest.json").read_text())


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
