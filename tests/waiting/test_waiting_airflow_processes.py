"""A deferred sensor survives its triggerer being killed: real scheduler, workers and triggerers.

API server, scheduler (LocalExecutor), DAG processor and triggerer run as separate processes in a
temporary AIRFLOW_HOME; the emulator runs in its own process. The DAG creates a batch that takes
about 30 s, and its sensor defers. Once the trigger has polled, the triggerer is killed with
SIGKILL (a crash, not a clean stop) and a new one started. The task must finish exactly once:
success on its first try, one trigger event.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.batch_requests import chat_rows

from benchmarks.airflow_deployment import AirflowDeployment

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


def states(airflow: AirflowDeployment, run_id: str) -> dict[str, tuple[str | None, int]]:
    return {
        ti["task_id"]: (ti["state"], ti["try_number"]) for ti in airflow.api.task_instances(DAG_ID, run_id)
    }


@pytest.mark.skipif(airflow_version() < (3, 3), reason="runs real processes on the newest Airflow only")
@pytest.mark.timeout(480)
def test_deferred_sensor_survives_a_triggerer_crash(tmp_path: Path) -> None:
    with AirflowDeployment(tmp_path) as airflow:
        # 30 requests at 1 per second: long enough to kill and restart a triggerer in the middle.
        emulator = airflow.start_emulator("xai-waiting-key-0123", processing_rate=1)
        airflow.env["AIRFLOW_CONN_XAI_DEFAULT"] = emulator.connection()
        (airflow.dags_folder / f"{DAG_ID}.py").write_text(
            DAG_SOURCE.format(dag_id=DAG_ID, requests=chat_rows(30))
        )
        airflow.start()
        airflow.wait_for_dags({DAG_ID})
        run_id = airflow.api.trigger(DAG_ID)["dag_run_id"]

        airflow.wait_for(
            "the sensor to defer", lambda: states(airflow, run_id).get("wait", ("",))[0] == "deferred", 150
        )
        # The first triggerer has really taken the trigger over once it polls the batch
        # (the sensor itself reads the batch once before deferring).
        airflow.wait_for("the trigger to poll", lambda: emulator.calls("get_batch") >= 3, 60)
        airflow.kill("triggerer-1")
        polls_at_crash = emulator.calls("get_batch")
        assert states(airflow, run_id)["wait"][0] == "deferred"

        airflow.start_component("triggerer")
        run = airflow.wait_for_run(DAG_ID, run_id, timeout=180)
        assert states(airflow, run_id) == {
            "make": ("success", 1),
            "wait": ("success", 1),
            "done": ("success", 1),
        }
        assert run["state"] == "success"
        assert emulator.calls("get_batch") > polls_at_crash  # the new triggerer took over
        # Both triggerers ran the trigger (one log each); only the second one fired, exactly once.
        runs = {
            path.name: path.read_text(errors="replace")
            for path in airflow.task_log_files(DAG_ID, "wait")
            if ".trigger." in path.name
        }
        assert len(runs) == 2, sorted(runs)
        assert sum(text.count(FIRED) for text in runs.values()) == 1
        assert emulator.calls("create_batch") == 1
