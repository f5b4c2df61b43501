"""Requests through Airflow's CeleryExecutor, with a worker, a triggerer and the scheduler lost.

The deployment: API server, scheduler, DAG processor, two Celery workers (concurrency 2), two
triggerers, a PostgreSQL metadata database and result backend, a Redis broker and the emulator as
the xAI service, every one a process of its own on loopback. The DAG: one create task; a mapped
add task, one task instance per shard (8 JSONL shards of 2,500 requests, two of them on S3 through
the local moto server, the rest on local disk), spread across both workers into the one batch, all
drawing on one team add limit; a deferrable sensor; the results export. The volume proves the
behaviour; ``make scale`` runs the same scenario with 200,000 requests in 16 shards (4 on S3),
through ``XAI_BATCH_SCALE_REQUESTS``, ``XAI_BATCH_SCALE_SHARDS`` and ``XAI_BATCH_SCALE_S3_SHARDS``.

Faults: one worker is killed (SIGKILL) while its add tasks are sending, and Airflow's retries hand
its work to the other worker; the scheduler is restarted; the triggerer running the sensor's
trigger is killed (SIGKILL) and the other one takes the trigger over.

What a user relies on: one batch, every request in it exactly once, a manifest that reconciles,
no task left behind, and the API key nowhere: not in a log, an XCom, a trigger row, a Celery
message or a Celery result.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks.airflow_deployment import AirflowDeployment, celery_deployment

pytestmark = [pytest.mark.airflow_processes, pytest.mark.slow]

DAG_ID = "xai_celery_scale_out"
REQUESTS = int(os.environ.get("XAI_BATCH_SCALE_REQUESTS", "20000"))
SHARDS = int(os.environ.get("XAI_BATCH_SCALE_SHARDS", "8"))
S3_SHARDS = int(os.environ.get("XAI_BATCH_SCALE_S3_SHARDS", "2"))
# The team's add limit, scaled down so that the adds take long enough to kill a worker under them:
# about 400 add calls whatever the volume, at 20 calls a second (the worker dies after 20 of them).
ADD_CALLS, ADD_WINDOW = 60, 3.0
REQUESTS_PER_CALL = max(1, REQUESTS // 400)

DAG_SOURCE = """
from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_provider_xai_batch.operators.batch import XAIAddBatchRequestsOperator, XAICreateBatchOperator
from airflow_provider_xai_batch.operators.results import XAIBatchResultsOperator
from airflow_provider_xai_batch.sensors.batch import XAIBatchSensor

with DAG(
    {dag_id!r},
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1),
    catchup=False,
    default_args={{"retries": 3, "retry_delay": timedelta(seconds=1)}},
) as dag:
    create = XAICreateBatchOperator(task_id="create_batch", name="scale-out")
    add = XAIAddBatchRequestsOperator.partial(task_id="add_shard", batch_id=create.output).expand_kwargs(
        {shards!r}
    )
    wait = XAIBatchSensor(
        task_id="wait", batch_id=create.output, deferrable=True, poke_interval=2, timeout=900
    )
    export = XAIBatchResultsOperator(task_id="export", batch_id=create.output, output_path={output!r})
    create >> add >> wait >> export
"""


def airflow_version() -> tuple[int, int]:
    from airflow import __version__

    major, minor = __version__.split(".")[:2]
    return int(major), int(minor)


def request_line(index: int) -> bytes:
    request = {
        "batch_request_id": f"req-{index:06d}",
        "batch_request": {
            "chat_get_completion": {
                "model": "grok-4.3",
                "messages": [{"role": "user", "content": f"question {index}"}],
            }
        },
    }
    return json.dumps(request, separators=(",", ":")).encode() + b"\n"


def write_shards(folder: Path, s3_endpoint: str, bucket: str) -> list[dict[str, str]]:
    """``SHARDS`` shards of the ``REQUESTS`` requests: the first ``S3_SHARDS`` on S3, the rest on local disk."""
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket=bucket)
    per_shard = REQUESTS // SHARDS
    shards: list[dict[str, str]] = []
    for shard in range(SHARDS):
        body = b"".join(request_line(index) for index in range(shard * per_shard, (shard + 1) * per_shard))
        name = f"shard-{shard:02d}.jsonl"
        if shard < S3_SHARDS:
            s3.put_object(Bucket=bucket, Key=f"prompts/{name}", Body=body)
            shards.append({"source": f"s3://{bucket}/prompts/{name}", "source_conn_id": "aws_shards"})
        else:
            (folder / name).write_bytes(body)
            shards.append({"source": str(folder / name)})
    return shards


def task_rows(deployment: AirflowDeployment) -> list[tuple[Any, ...]]:
    return deployment.query(
        "SELECT task_id, map_index, state, try_number, hostname FROM task_instance WHERE dag_id = %s",
        DAG_ID,
    )


def running_adds(deployment: AirflowDeployment, worker: str) -> list[int]:
    return sorted(
        map_index
        for task_id, map_index, state, _, hostname in task_rows(deployment)
        if task_id == "add_shard" and state == "running" and hostname == worker
    )


def trigger_holder(deployment: AirflowDeployment) -> str | None:
    """The triggerer (process name) running the sensor's trigger, if one has it."""
    rows = deployment.query(
        "SELECT job.hostname FROM trigger JOIN job ON job.id = trigger.triggerer_id "
        "JOIN task_instance ti ON ti.trigger_id = trigger.id WHERE ti.dag_id = %s AND ti.task_id = 'wait'",
        DAG_ID,
    )
    return str(rows[0][0]) if rows else None


@pytest.mark.skipif(airflow_version() < (3, 3), reason="runs real processes on the newest Airflow only")
@pytest.mark.timeout(900)
def test_two_workers_two_triggerers_survive_losing_one_of_each(tmp_path: Path, s3_endpoint: str) -> None:
    started = time.monotonic()
    api_key = f"xai-canary-{secrets.token_hex(12)}"
    output = tmp_path / "results"
    shards = write_shards(tmp_path, s3_endpoint, f"xai-shards-{secrets.token_hex(4)}")
    flags = {
        "processing_rate": 1,  # held back until the triggerer fault is over
        "create_rate_limit": 0,
        "add_rate_limit": ADD_CALLS,
        "add_rate_window": ADD_WINDOW,
    }
    connections = {
        "AIRFLOW_CONN_AWS_SHARDS": json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
            }
        ),
    }
    with celery_deployment(tmp_path, connections) as airflow:
        emulator = airflow.start_emulator(api_key, **flags)
        airflow.env["AIRFLOW_CONN_XAI_DEFAULT"] = emulator.connection(
            add_calls=ADD_CALLS, add_window_seconds=ADD_WINDOW, max_requests_per_call=REQUESTS_PER_CALL
        )
        (airflow.dags_folder / f"{DAG_ID}.py").write_text(
            DAG_SOURCE.format(dag_id=DAG_ID, shards=shards, output=str(output))
        )
        airflow.start()
        airflow.wait_for_dags({DAG_ID})
        airflow.api.trigger(DAG_ID)

        # Fault 1: a worker dies (SIGKILL) while its add tasks are sending.
        airflow.wait_for(
            "add tasks sending on both workers",
            lambda: (
                running_adds(airflow, "celery-worker-1")
                and running_adds(airflow, "celery-worker-2")
                and emulator.calls("add_requests") >= 20
            ),
            240,
        )
        killed_adds = running_adds(airflow, "celery-worker-1")
        airflow.kill("celery-worker-1", signal.SIGKILL)

        # Fault 2: the scheduler restarts.
        airflow.restart("scheduler-1")

        # Fault 3: the triggerer running the sensor's trigger dies (SIGKILL) while it waits.
        holder = airflow.wait_for("the sensor's trigger to run", lambda: trigger_holder(airflow), 400)
        polls = emulator.calls("get_batch")
        airflow.wait_for("the trigger to poll", lambda: emulator.calls("get_batch") >= polls + 2, 60)
        airflow.kill(holder, signal.SIGKILL)
        survivor = "triggerer-2" if holder == "triggerer-1" else "triggerer-1"
        airflow.wait_for("the other triggerer to take over", lambda: trigger_holder(airflow) == survivor, 120)
        polls = emulator.calls("get_batch")
        airflow.wait_for("the new triggerer to poll", lambda: emulator.calls("get_batch") > polls, 60)
        emulator.configure(processing_rate=0)  # now let the batch finish

        airflow.wait_for(
            "the DAG run to finish",
            lambda: airflow.query(
                "SELECT state FROM dag_run WHERE dag_id = %s AND state != 'running'", DAG_ID
            ),
            400,
        )
        rows = task_rows(airflow)
        run_states = airflow.query("SELECT state FROM dag_run WHERE dag_id = %s", DAG_ID)
        xcoms = airflow.query("SELECT value::text FROM xcom WHERE dag_id = %s", DAG_ID)
        trigger_rows = airflow.query("SELECT kwargs::text, classpath FROM trigger")
        celery_results = airflow.query(
            "SELECT coalesce(encode(result, 'escape'), '') || coalesce(traceback, '') FROM celery_taskmeta"
        )
        earlier_tries = airflow.query(
            "SELECT map_index, hostname, state FROM task_instance_history "
            "WHERE dag_id = %s AND task_id = 'add_shard'",
            DAG_ID,
        )
        assert airflow.broker is not None
        broker = airflow.broker.dump()
        batches = emulator.get("/v1/batches")
        stats = emulator.stats()
    logs = airflow.all_logs()

    # One run, every task instance done, no task stuck.
    assert run_states == [("success",)], rows
    states = {(task_id, map_index): (state, tries, host) for task_id, map_index, state, tries, host in rows}
    assert len(states) == 3 + SHARDS
    assert all(state == "success" for state, _, _ in states.values()), states
    # The killed worker's add tasks were retried and finished on the other worker.
    assert killed_adds
    for map_index in killed_adds:
        state, tries, host = states[("add_shard", map_index)]
        assert tries >= 2 and host == "celery-worker-2", (map_index, states[("add_shard", map_index)])
    # Their first tries ran on the killed worker, and were cut short there.
    assert sorted(map_index for map_index, _, _ in earlier_tries) == killed_adds
    assert {host for _, host, _ in earlier_tries} == {"celery-worker-1"}

    # Exactly one batch, holding every request exactly once.
    listed = batches.get("batches", batches.get("data", []))
    assert len(listed) == 1, listed
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["reconciled"] is True
    assert manifest["total"] == REQUESTS
    assert manifest["succeeded"] + manifest["failed"] == REQUESTS
    seen: list[str] = []
    for name in ("succeeded.jsonl", "failed.jsonl"):
        with (output / name).open("rb") as handle:
            seen.extend(json.loads(line)["batch_request_id"] for line in handle)
    assert len(seen) == REQUESTS
    assert set(seen) == {f"req-{index:06d}" for index in range(REQUESTS)}
    # The shared pacing kept the team limit: few add calls were refused.
    add_answers = stats["answers_by_route"].get("add_requests", {})
    assert add_answers.get("200", 0) >= REQUESTS // REQUESTS_PER_CALL

    # The API key nowhere.
    secret = api_key.encode()
    assert secret not in logs
    assert len(logs) > 0
    assert xcoms and not any(api_key in str(value) for (value,) in xcoms)
    assert trigger_rows == [] or not any(
        secret in airflow.decrypt(kwargs.strip('"')) for kwargs, _ in trigger_rows if kwargs
    )
    assert celery_results and not any(api_key in text for (text,) in celery_results)
    assert secret not in broker

    print(
        f"\nscenario: {REQUESTS} requests, {len(listed)} batch, {len(seen) - len(set(seen))} duplicated, "
        f"{REQUESTS - len(set(seen))} lost; faults: worker SIGKILL ({len(killed_adds)} add tasks retried), "
        f"scheduler restart, triggerer SIGKILL; add calls {add_answers}; "
        f"{time.monotonic() - started:.0f}s"
    )
