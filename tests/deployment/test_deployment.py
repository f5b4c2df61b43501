"""Day one in a real deployment: what ``dag.test()`` hides.

API server, scheduler (LocalExecutor), DAG processor and triggerer are separate processes, the
emulator another one. Everything goes through the public REST API, as a user's tooling would: runs
are triggered with no logical date (as the UI, the CLI and the API do), the connection form comes
from the UI's own endpoint.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from deployment_support import CHAT, ERRORS_DAG_ID, Deployment, newest_airflow_only

from airflow_provider_xai_batch.get_provider_info import EXTRA_FIELDS

pytestmark = [pytest.mark.airflow_processes, pytest.mark.slow]

# Each example and the task that waits on its batch, deferred to the triggerer.
WAITING_TASK = {
    "example_xai_batch_nightly": "wait_for_batch",
    "example_xai_batch_taskflow": "run_batch",
    "example_xai_batch_fan_in": "wait_for_batch",
    "example_xai_batch_watch": "wait_for_batch",
}
# What the triggerer logs, in the trigger's own log, when a trigger hands its event back.
TRIGGER_FIRED = "Trigger fired event"
# succeeded, failed: what each example's manifest must count.
EXPECTED_COUNTS = {
    "example_xai_batch_nightly": (8, 2),
    "example_xai_batch_taskflow": (12, 0),
    "example_xai_batch_fan_in": (9, 0),
    "example_xai_batch_watch": (3, 0),
}


def task_states(deployment: Deployment, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
    instances = deployment.airflow.api.task_instances(dag_id, run_id)
    return {f"{ti['task_id']}[{ti['map_index']}]": ti for ti in instances}


def seed_batch_made_elsewhere(deployment: Deployment) -> str:
    """A batch created outside Airflow, for the watch example."""
    with deployment.emulator.http() as client:
        batch_id = str(client.post("/v1/batches", json={"name": "made-elsewhere"}).json()["batch_id"])
        rows = [
            {"batch_request_id": f"w{i}", "batch_request": {"chat_get_completion": CHAT}} for i in range(3)
        ]
        client.post(f"/v1/batches/{batch_id}/requests", json={"batch_requests": rows}).raise_for_status()
    return batch_id


@newest_airflow_only()
@pytest.mark.timeout(600)
def test_the_connection_form_is_the_xai_one(deployment: Deployment) -> None:
    metas = deployment.airflow.api.get("/ui/connections/hook_meta")
    [xai] = [meta for meta in metas if meta["connection_type"] == "xai"]
    assert xai["hook_name"] == "xAI Batch"
    fields = xai["standard_fields"]
    assert fields is not None, xai
    assert fields["password"]["title"] == "API key" and not fields["password"]["hidden"]
    assert fields["host"]["title"] == "Base URL" and not fields["host"]["hidden"]
    assert all(fields[name]["hidden"] for name in ("login", "port", "url_schema"))
    extras = xai["extra_fields"]
    assert set(extras) == set(EXTRA_FIELDS) >= {"timeout", "max_retries", "add_calls", "max_request_bytes"}
    assert extras["timeout"]["schema"]["title"] == "Timeout (seconds)"
    assert all(extra["value"] is None for extra in extras.values())  # empty unless the user sets one


@newest_airflow_only()
@pytest.mark.timeout(600)
def test_every_example_runs_by_hand_and_survives_a_triggerer_crash(deployment: Deployment) -> None:
    airflow, api, emulator = deployment.airflow, deployment.airflow.api, deployment.emulator
    airflow.wait_for_dags({*WAITING_TASK, ERRORS_DAG_ID})
    watched = seed_batch_made_elsewhere(deployment)
    batches_before = emulator.stats()["service"]["batches"]

    runs: list[tuple[str, str]] = []
    for dag_id in WAITING_TASK:
        run = api.trigger(dag_id, {"batch_id": watched} if dag_id.endswith("watch") else None)
        assert run["logical_date"] is None and run["run_type"] == "manual", run
        runs.append((dag_id, run["dag_run_id"]))
    # The nightly example is scheduled too: once unpaused, the scheduler starts its latest interval.
    scheduled = airflow.wait_for(
        "the nightly example's scheduled run",
        lambda: [run for run in api.runs("example_xai_batch_nightly") if run["run_type"] == "scheduled"],
        120,
    )
    assert scheduled[0]["logical_date"] is not None
    runs.append(("example_xai_batch_nightly", scheduled[0]["dag_run_id"]))

    # Batches are held pending, so every waiting task is seen deferred to the triggerer.
    for dag_id, run_id in runs:
        waiting = f"{WAITING_TASK[dag_id]}[-1]"
        airflow.wait_for(
            f"{dag_id} {run_id}: {waiting} deferred",
            lambda dag_id=dag_id, run_id=run_id, waiting=waiting: (
                task_states(deployment, dag_id, run_id).get(waiting, {}).get("state") == "deferred"
            ),
            180,
        )
    # The triggerer has taken every trigger over once each has a trigger log and polls the service.
    airflow.wait_for(
        "every trigger to run in the first triggerer",
        lambda: all(
            any(".trigger." in path.name for path in airflow.task_log_files(dag_id, WAITING_TASK[dag_id]))
            for dag_id in WAITING_TASK
        ),
        60,
    )
    polls = emulator.calls("get_batch")
    airflow.wait_for("the triggers to poll", lambda: emulator.calls("get_batch") >= polls + len(runs), 60)

    airflow.kill("triggerer-1")
    for dag_id, run_id in runs:
        assert task_states(deployment, dag_id, run_id)[f"{WAITING_TASK[dag_id]}[-1]"]["state"] == "deferred"
    airflow.start_component("triggerer")
    emulator.configure(processing_rate=0)  # release the batches: they finish at once

    for dag_id, run_id in runs:
        run = airflow.wait_for_run(dag_id, run_id, timeout=240)
        states = task_states(deployment, dag_id, run_id)
        assert run["state"] == "success", (dag_id, run_id, {key: ti["state"] for key, ti in states.items()})
        # No task ran twice: the waiting task resumed exactly once, after the crash.
        assert {key: ti["try_number"] for key, ti in states.items()} == dict.fromkeys(states, 1)

    # One batch per run (the watched one was made outside), each run's results in its own folder.
    assert emulator.stats()["service"]["batches"] == batches_before + len(runs) - 1
    manifests = {run_id: deployment.manifest(dag_id, run_id) for dag_id, run_id in runs}
    assert len({manifest["batch_id"] for manifest in manifests.values()}) == len(runs)
    for dag_id, run_id in runs:
        manifest = manifests[run_id]
        assert (manifest["succeeded"], manifest["failed"]) == EXPECTED_COUNTS[dag_id], (dag_id, manifest)
    assert manifests[dict(runs)["example_xai_batch_watch"]]["batch_id"] == watched
    # Both triggerers ran each run's trigger, the first until it was killed, the second to the end;
    # only the second fired, exactly once: the crash neither lost the event nor sent it twice.
    for dag_id, run_id in runs:
        trigger_logs = {
            path.name: path.read_text(errors="replace")
            for path in airflow.task_log_files(dag_id, WAITING_TASK[dag_id])
            if ".trigger." in path.name and f"run_id={run_id}" in str(path)
        }
        assert len(trigger_logs) == 2, (dag_id, run_id, sorted(trigger_logs))
        assert sum(text.count(TRIGGER_FIRED) for text in trigger_logs.values()) == 1, (dag_id, run_id)


@newest_airflow_only()
@pytest.mark.timeout(600)
def test_errors_no_retry_can_fix_fail_the_task_at_once(deployment: Deployment) -> None:
    """A bad input line and a wrong key fail on the first try, although the tasks have retries."""
    airflow = deployment.airflow
    airflow.wait_for_dags({ERRORS_DAG_ID})
    started = time.monotonic()
    run_id = airflow.api.trigger(ERRORS_DAG_ID)["dag_run_id"]
    run = airflow.wait_for_run(ERRORS_DAG_ID, run_id, timeout=240)
    states = task_states(deployment, ERRORS_DAG_ID, run_id)
    summary = {key: (ti["state"], ti["try_number"]) for key, ti in states.items()}
    assert run["state"] == "failed", summary
    assert summary == {"bad_input[-1]": ("failed", 1), "wrong_key[-1]": ("failed", 1)}, (
        f"{summary} after {time.monotonic() - started:.0f}s: retried instead of failing at once"
    )
    bad_input_log = airflow.api.task_log(ERRORS_DAG_ID, run_id, "bad_input", 1)
    assert "item 0" in bad_input_log and "no body" in bad_input_log, bad_input_log[-2000:]
    wrong_key_log = airflow.api.task_log(ERRORS_DAG_ID, run_id, "wrong_key", 1)
    assert "API key" in wrong_key_log and "xai-not-the-right-key" not in wrong_key_log, wrong_key_log[-2000:]
