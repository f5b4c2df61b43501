"""The sensor and the one-task operator in real DAG runs (``dag.test()``), in poke and deferrable mode.

``dag.test()`` runs a deferred task's trigger inline, so the deferrable runs go through
serialisation, the trigger and ``execute_complete`` just as under a triggerer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.batch_requests import chat_rows, jsonl_line
from support.dags import run_dag_file as run_dag
from support.emulator import connection_env
from waiting_support import seed_batch, seed_file_batch

# The batch is created inside the run (starting DAG runs takes longer than a small batch), and a
# downstream task writes what it received, so the test reads the XCom without Airflow internals.
SENSOR_DAG = """
import json, pathlib
from contextlib import closing
import pendulum
from airflow.sdk import DAG, task
from airflow_provider_xai_batch.hooks.xai import XAIBatchHook
from airflow_provider_xai_batch.sensors.batch import XAIBatchSensor

with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    @task
    def make():
        batch_id = {batch_id!r}
        if batch_id is None:
            with closing(XAIBatchHook()) as hook:
                batch_id = hook.create_batch("sensor-test").batch_id
                hook.add_requests(batch_id, {requests!r})
        return batch_id

    wait = XAIBatchSensor(
        task_id="wait", batch_id=make(), poke_interval=0.2, timeout={timeout!r},
        deferrable={deferrable!r},
    )

    @task
    def keep(batch):
        pathlib.Path({out!r}).write_text(json.dumps(batch))

    keep(wait.output)
"""

ONE_TASK_DAG = """
import json, pathlib
from datetime import timedelta
import pendulum
from airflow.sdk import DAG, task
from airflow_provider_xai_batch.operators.one_task import XAIBatchOperator

with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    run_batch = XAIBatchOperator(
        task_id="run_batch", name="nightly", requests={requests!r}, output_path={output_path!r},
        deferrable={deferrable!r}, poll_interval=0.2, timeout={timeout!r},
        retries=1, retry_delay=timedelta(seconds=0),
    )

    @task
    def keep(value):
        pathlib.Path({out!r}).write_text(json.dumps(value))

    keep(run_batch.output)
"""


def states(run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


@pytest.mark.parametrize("deferrable", [False, True], ids=["poke", "deferrable"])
def test_sensor_waits_for_completion_and_returns_the_batch(
    emulator: Any,
    ticking_clock: Any,
    xai_connection: str,
    dags_folder: Path,
    tmp_path: Path,
    deferrable: bool,
) -> None:
    # Half a request per emulator call: the batch is still processing when the sensor first looks,
    # however long the machine takes between the two tasks.
    emulator.config.update({"processing_rate": 0.5})
    out = tmp_path / "batch.json"
    source = SENSOR_DAG.format(
        dag_id="sensor_ok",
        batch_id=None,
        requests=chat_rows(8),
        timeout=60,
        deferrable=deferrable,
        out=str(out),
    )

    run = run_dag(source, "sensor_ok", dags_folder)

    assert run.state == "success", states(run)
    batch = json.loads(out.read_text())
    assert batch["status"] == "completed"
    assert batch["state"]["num_success"] == 8
    assert emulator.calls("get_batch") >= 2  # it waited rather than finding it done at once
    assert emulator.calls("list_results") == 0


@pytest.mark.parametrize("deferrable", [False, True], ids=["poke", "deferrable"])
def test_sensor_fails_on_a_batch_rejected_by_xai(
    emulator: Any, xai_connection: str, dags_folder: Path, tmp_path: Path, deferrable: bool
) -> None:
    batch_id = seed_file_batch(emulator, [jsonl_line("a"), "{broken"])
    source = SENSOR_DAG.format(
        dag_id="sensor_failed",
        batch_id=batch_id,
        requests=None,
        timeout=60,
        deferrable=deferrable,
        out=str(tmp_path / "x"),
    )

    run = run_dag(source, "sensor_failed", dags_folder)

    assert run.state == "failed"
    assert states(run)["wait"] == "failed"
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("deferrable", [False, True], ids=["poke", "deferrable"])
def test_sensor_timeout_is_honoured(
    emulator: Any, xai_connection: str, dags_folder: Path, tmp_path: Path, deferrable: bool
) -> None:
    emulator.config.update({"processing_rate": 0.1})
    batch_id = seed_batch(emulator, requests=50)
    source = SENSOR_DAG.format(
        dag_id="sensor_timeout",
        batch_id=batch_id,
        requests=None,
        timeout=1,
        deferrable=deferrable,
        out=str(tmp_path / "x"),
    )

    run = run_dag(source, "sensor_timeout", dags_folder)

    assert run.state == "failed"
    assert states(run)["wait"] == "failed"
    assert emulator.service.get_batch(batch_id)["cancel_time"] is None  # a timeout never cancels


@pytest.mark.parametrize("deferrable", [False, True], ids=["poke", "deferrable"])
def test_one_task_operator_writes_results_and_returns_the_manifest(
    emulator: Any, xai_connection: str, dags_folder: Path, tmp_path: Path, deferrable: bool
) -> None:
    emulator.config.update({"processing_rate": 10, "error_rate": 0.3})
    requests = [
        {"custom_id": f"q{index}", "body": row["batch_request"]["chat_get_completion"]}
        for index, row in enumerate(chat_rows(8))
    ]
    output = tmp_path / "results"
    out = tmp_path / "manifest.json"
    source = ONE_TASK_DAG.format(
        dag_id="one_task_results",
        requests=requests,
        output_path=str(output),
        deferrable=deferrable,
        timeout=60,
        out=str(out),
    )

    run = run_dag(source, "one_task_results", dags_folder)

    assert run.state == "success", states(run)
    manifest = json.loads(out.read_text())
    assert manifest["total"] == 8
    assert manifest["succeeded"] + manifest["failed"] == 8
    # Which requests fail depends on the (random) batch id: check the files agree with the manifest.
    assert len((output / "succeeded.jsonl").read_text().splitlines()) == manifest["succeeded"]
    assert len((output / "failed.jsonl").read_text().splitlines()) == manifest["failed"]
    assert json.loads((output / "manifest.json").read_text()) == manifest
    assert emulator.calls("create_batch") == 1


@pytest.mark.parametrize("deferrable", [False, True], ids=["poke", "deferrable"])
def test_one_task_operator_without_output_returns_the_final_batch(
    emulator: Any, xai_connection: str, dags_folder: Path, tmp_path: Path, deferrable: bool
) -> None:
    emulator.config.update({"processing_rate": 10})
    out = tmp_path / "batch.json"
    source = ONE_TASK_DAG.format(
        dag_id="one_task_batch",
        requests=chat_rows(4),
        output_path=None,
        deferrable=deferrable,
        timeout=60,
        out=str(out),
    )

    run = run_dag(source, "one_task_batch", dags_folder)

    assert run.state == "success", states(run)
    batch = json.loads(out.read_text())
    assert batch["status"] == "completed"
    assert batch["state"]["num_success"] == 4
    assert emulator.calls("list_results") == 0


def test_one_task_operator_retry_reattaches_instead_of_creating_again(
    emulator: Any, dags_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.config.update({"processing_rate": 10})
    # No retries inside the client, so the first try creates the batch, then fails adding to it
    # with a transient error: Airflow's retry takes over.
    monkeypatch.setenv("AIRFLOW_CONN_XAI_DEFAULT", connection_env(emulator, max_retries=0))
    emulator.faults.inject("add_requests", status=503, count=1)
    out = tmp_path / "batch.json"
    source = ONE_TASK_DAG.format(
        dag_id="one_task_retry",
        requests=chat_rows(4),
        output_path=None,
        deferrable=False,
        timeout=60,
        out=str(out),
    )

    run = run_dag(source, "one_task_retry", dags_folder)

    assert run.state == "success", states(run)
    [ti] = [ti for ti in run.get_task_instances() if ti.task_id == "run_batch"]
    assert ti.try_number == 2
    assert emulator.calls("create_batch") == 1
    assert emulator.service.counts()["batches"] == 1
    batch = json.loads(out.read_text())
    assert batch["state"]["num_requests"] == 4  # the second add added nothing twice


def test_one_task_operator_timeout_fails_and_leaves_the_batch_running(
    emulator: Any, xai_connection: str, dags_folder: Path, tmp_path: Path
) -> None:
    emulator.config.update({"processing_rate": 0.1})
    source = ONE_TASK_DAG.format(
        dag_id="one_task_timeout",
        requests=chat_rows(20),
        output_path=None,
        deferrable=True,
        timeout=1,
        out=str(tmp_path / "x"),
    ).replace("retries=1", "retries=0")

    run = run_dag(source, "one_task_timeout", dags_folder)

    assert run.state == "failed"
    [batch] = emulator.service.list_batches()["batches"]
    assert batch["cancel_time"] is None
    assert batch["state"]["num_pending"] > 0
