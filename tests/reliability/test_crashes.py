"""Crashes: a worker killed with SIGKILL in the middle of adding, and a batch cancelled mid-wait.

A triggerer killed mid-wait is covered with real Airflow processes by
``tests/deployment/test_deployment.py::test_every_example_runs_by_hand_and_survives_a_triggerer_crash``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from reliability_support import jsonl_request
from support.batch_requests import native_request
from support.constants import TEST_API_KEY
from support.dags import run_dag_file, task_states
from support.emulator import held_request_ids
from support.jsonl import jsonl_rows, write_jsonl

from airflow_provider_xai_batch.emulator import EmulatorServer

# The add task as a worker runs it, in a process of its own that the test can kill.
ADD_TASK_SCRIPT = """
import json, sys
from airflow_provider_xai_batch.operators.batch import XAIAddBatchRequestsOperator

batch_id, source, out = sys.argv[1:4]
task = XAIAddBatchRequestsOperator(task_id="add", batch_id=batch_id, source=source)
result = task.execute({})
with open(out, "w") as handle:
    json.dump(result, handle)
"""

REQUESTS = 2000
PER_CALL = 100


def start_add_task(script: Path, batch_id: str, source: str, out: Path, env: dict[str, str]) -> Any:
    log = out.with_suffix(f".{time.monotonic_ns()}.log")
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, str(script), batch_id, source, str(out)],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    process.log = log  # type: ignore[attr-defined]
    return process


def tail(process: Any) -> str:
    return str(process.log.read_text(errors="replace")[-3000:])


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


# A worker process of its own, killed and started again: it runs once, in the serial real-process
# part of the suite, where no parallel test competes with the process it waits for.
@pytest.mark.airflow_processes
@pytest.mark.timeout(180)
def test_add_task_killed_with_sigkill_then_retried_holds_exactly_the_input(tmp_path: Path) -> None:
    inputs = tmp_path / "input"
    expected: list[str] = []
    for part in range(2):
        rows = [jsonl_request(f"k-{part}-{i:05d}", f"prompt {part}/{i}") for i in range(REQUESTS // 2)]
        write_jsonl(inputs / f"part-{part}.jsonl", rows)
        expected.extend(row["custom_id"] for row in rows)
    script = tmp_path / "add_task.py"
    script.write_text(ADD_TASK_SCRIPT)
    out = tmp_path / "xcom.json"

    with EmulatorServer(api_key=TEST_API_KEY, add_rate_limit=0) as emulator:
        batch_id = emulator.service.create_batch("sigkill")["batch_id"]
        connection = {
            "conn_type": "xai",
            "password": TEST_API_KEY,
            "host": emulator.url,
            "extra": {"max_requests_per_call": PER_CALL},
        }
        env = {**os.environ, "AIRFLOW_CONN_XAI_DEFAULT": json.dumps(connection)}
        source = f"file://{inputs}/*.jsonl"
        # Every add call waits 300 ms before it is applied: time to kill the worker between calls,
        # or while a call it sent is still on its way to being applied.
        emulator.faults.inject("add_requests", latency_ms=300, count=10_000)

        first = start_add_task(script, batch_id, source, out, env)
        try:
            wait_until(
                lambda: len(held_request_ids(emulator, batch_id)) >= 5 * PER_CALL or first.poll() is not None,
                90,
                "five add calls to be applied",
            )
            assert first.poll() is None, tail(first)
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait(10)
        assert first.returncode == -signal.SIGKILL
        time.sleep(0.5)  # a call in flight at the kill may still be applied: the worst case
        held_at_kill = len(held_request_ids(emulator, batch_id))
        calls_at_kill = emulator.calls("add_requests")
        assert PER_CALL * 5 <= held_at_kill < REQUESTS
        assert not out.exists()

        # The retry: the same task, the same input, a fresh process.
        emulator.faults.clear()
        retry = start_add_task(script, batch_id, source, out, env)
        assert retry.wait(120) == 0, tail(retry)

        held = held_request_ids(emulator, batch_id)
        batch = emulator.service.get_batch(batch_id)

    assert held == expected, "the batch must hold exactly the input, in order, each request once"
    assert max(Counter(held).values()) == 1
    assert batch["state"]["num_requests"] == REQUESTS
    assert json.loads(out.read_text()) == {"batch_id": batch_id, "added": REQUESTS}
    print(
        f"\nSIGKILL mid-add: {held_at_kill} of {REQUESTS} requests held after {calls_at_kill} add calls; "
        f"after the retry {len(held)} held, {len(held) - len(set(held))} duplicates, "
        f"{len(set(expected) - set(held))} lost"
    )


CANCEL_DAG = """
import datetime, pathlib
import pendulum
from airflow.sdk import DAG
from airflow_provider_xai_batch.operators.batch import XAIAddBatchRequestsOperator, XAICreateBatchOperator
from airflow_provider_xai_batch.operators.results import XAIBatchResultsOperator
from airflow_provider_xai_batch.sensors.batch import XAIBatchSensor


class RecordingSensor(XAIBatchSensor):
    # Keeps the failure text where the test can read it, on every Airflow version.
    def execute_complete(self, context, event=None):
        try:
            return super().execute_complete(context, event)
        except Exception as error:
            pathlib.Path({error_file!r}).write_text(f"{{type(error).__name__}}: {{error}}")
            raise


with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    create = XAICreateBatchOperator(task_id="create", name="cancel-mid-wait")
    add = XAIAddBatchRequestsOperator(task_id="add", batch_id=create.output, requests={requests!r})
    wait = RecordingSensor(
        task_id="wait", batch_id=create.output, deferrable=True, poke_interval=0.5, timeout=120,
    )
    export = XAIBatchResultsOperator(
        task_id="export", batch_id=create.output, output_path={output!r}, trigger_rule="all_done",
    )
    create >> add >> wait >> export
"""


@pytest.mark.timeout(180)
def test_batch_cancelled_from_outside_mid_wait_fails_the_sensor_and_exports_what_exists(
    dags_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests = [native_request(f"c-{i:04d}", f"prompt {i}") for i in range(300)]
    output, error_file = tmp_path / "output", tmp_path / "wait.error"
    with EmulatorServer(api_key=TEST_API_KEY, processing_rate=15) as emulator:
        monkeypatch.setenv(
            "AIRFLOW_CONN_XAI_DEFAULT",
            json.dumps({"conn_type": "xai", "password": TEST_API_KEY, "host": emulator.url}),
        )
        cancelled: dict[str, Any] = {}

        def cancel_from_outside() -> None:
            # Someone cancels the batch in the console while the deferred sensor is polling it:
            # the sensor looks once before deferring, so a third look is the trigger's second poll.
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and emulator.calls("get_batch") < 3:
                time.sleep(0.01)
            for batch in emulator.service.list_batches(limit=10)["batches"]:
                cancelled.update(emulator.service.cancel_batch(batch["batch_id"]))

        canceller = threading.Thread(target=cancel_from_outside, daemon=True)
        canceller.start()
        source = CANCEL_DAG.format(
            dag_id="cancel_mid_wait",
            requests=requests,
            output=f"file://{output}",
            error_file=str(error_file),
        )
        run: Any = run_dag_file(source, "cancel_mid_wait", dags_folder)
        canceller.join(5)
        batch = emulator.service.get_batch(cancelled["batch_id"])

    states = task_states(run)
    assert states["wait"] == "failed", states
    message = error_file.read_text()
    assert "cancelled" in message and batch["batch_id"] in message, message

    # The results that exist are still exported, cancelled requests among the failures.
    assert states["export"] == "success", states
    manifest = json.loads((output / "manifest.json").read_text())
    state = batch["state"]
    assert 0 < state["num_success"] < len(requests) and state["num_cancelled"] > 0
    assert manifest["status"] == "cancelled" and manifest["reconciled"] is True, manifest["notes"]
    assert manifest["succeeded"] == state["num_success"]
    assert manifest["cancelled"] == state["num_cancelled"]
    assert manifest["total"] == len(requests) == state["num_requests"]
    succeeded = [row["batch_request_id"] for row in jsonl_rows(output / "succeeded.jsonl")]
    failed = list(jsonl_rows(output / "failed.jsonl"))
    cancelled_rows = [row for row in failed if row["error"] == "Batch cancelled"]
    assert len(cancelled_rows) == state["num_cancelled"]
    ids = succeeded + [row["batch_request_id"] for row in failed]
    assert sorted(ids) == sorted(request["batch_request_id"] for request in requests)
    print(
        f"\ncancelled mid-wait: sensor says {message!r}; exported {manifest['succeeded']} succeeded, "
        f"{manifest['cancelled']} cancelled of {manifest['total']}"
    )
