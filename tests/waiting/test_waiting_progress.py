"""Progress in the task log while waiting: the pure decision, and the lines every way of waiting writes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.batch_requests import chat_rows
from support.dags import run_dag_file as run_dag
from support.emulator import TickingClock, connection_env

from airflow_provider_xai_batch.client import Batch, BatchState
from airflow_provider_xai_batch.emulator import EmulatorServer
from airflow_provider_xai_batch.waiting import ProgressLog, progress_line


def batch(done: int, total: int = 100, *, failed: int = 0, pending: int | None = None) -> Batch:
    left = total - done if pending is None else pending
    state = BatchState(num_requests=total, num_pending=left, num_success=done - failed, num_error=failed)
    return Batch(batch_id="b1", state=state)


def test_the_line_says_done_total_percent_rate_and_time_left() -> None:
    line = progress_line(batch(250, 1000, failed=10), rate=5.0)
    assert line == (
        "Batch b1 is processing: 250/1,000 done (25.0%), 5.0 requests/s, about 2m 30s left "
        "(240 succeeded, 10 failed, 0 cancelled)"
    )
    # Before a rate is measured the line leaves it out instead of saying it is unknown.
    assert progress_line(batch(0), rate=None) == (
        "Batch b1 is processing: 0/100 done (0.0%) (0 succeeded, 0 failed, 0 cancelled)"
    )


def test_a_line_whenever_the_counts_change_but_at_most_once_per_interval() -> None:
    log = ProgressLog(interval=60)
    lines = {
        now: log.line(batch(done), now=now) for now, done in [(0, 0), (20, 5), (59, 9), (60, 10), (70, 20)]
    }
    assert [now for now, line in lines.items() if line] == [0, 60]
    assert log.line(batch(10), now=500) is None  # nothing changed since the last line
    assert log.line(batch(30), now=500) is not None


def test_the_rate_is_measured_over_this_wait() -> None:
    log = ProgressLog(interval=60)
    log.line(batch(100, 400), now=1000)  # requests done before the wait began do not count
    line = log.line(batch(160, 400), now=1060)
    assert line is not None and "1.0 requests/s, about 4m 0s left" in line


def test_a_status_change_is_reported_even_with_the_same_counts() -> None:
    log = ProgressLog(interval=0)
    assert log.line(Batch(batch_id="b1"), now=0) is not None  # empty
    assert log.line(Batch(batch_id="b1"), now=1) is None
    validating = Batch(batch_id="b1", input_file_id="file_1")
    assert log.line(validating, now=2) is not None


@pytest.fixture
def ticking_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorServer]:
    """An emulator finishing one request per two clock reads, as ``xai_default``."""
    with EmulatorServer(api_key="xai-progress-key-0123", clock=TickingClock(), processing_rate=0.5) as server:
        monkeypatch.setenv("AIRFLOW_CONN_XAI_DEFAULT", connection_env(server))
        yield server


PROGRESS = re.compile(r"Batch batch_\S+ is processing: (\d+)/24 done \(\d+\.\d%\), .*\[([\w.]+)\]")

SENSOR_DAG = """
from contextlib import closing
import pendulum
from airflow.sdk import DAG, task
from airflow_provider_xai_batch.hooks.xai import XAIBatchHook
from airflow_provider_xai_batch.sensors.batch import XAIBatchSensor

with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    @task
    def make():
        with closing(XAIBatchHook()) as hook:
            batch_id = hook.create_batch("progress").batch_id
            hook.add_requests(batch_id, {requests!r})
        return batch_id

    XAIBatchSensor(
        task_id="wait", batch_id=make(), poke_interval=0.1, timeout=120, deferrable={deferrable!r},
        progress_interval=0,
    )
"""

ONE_TASK_DAG = """
import pendulum
from airflow.sdk import DAG
from airflow_provider_xai_batch.operators.one_task import XAIBatchOperator

with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    XAIBatchOperator(
        task_id="run_batch", name="progress", requests={requests!r}, deferrable={deferrable!r},
        poll_interval=0.1, timeout=120, progress_interval=0,
    )
"""


def task_log(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> str:
    """Every line logged, each ending with its logger's name in brackets.

    Airflow 3.3 renders task and trigger logs to the process's output with the logger name in
    brackets; Airflow 3.0 sends them through standard logging, where pytest keeps the records.
    """
    out, err = capfd.readouterr()
    records = [f"{record.getMessage()} [{record.name}]" for record in caplog.records]
    return "\n".join([out, err, *records])


@pytest.mark.parametrize(
    ("template", "deferrable", "waiter"),
    [
        (SENSOR_DAG, False, "sensors.batch.XAIBatchSensor"),
        (SENSOR_DAG, True, "triggers.batch.XAIBatchTrigger"),
        (ONE_TASK_DAG, False, "one_task.XAIBatchOperator"),
        (ONE_TASK_DAG, True, "triggers.batch.XAIBatchTrigger"),
    ],
    ids=["sensor-poke", "sensor-trigger", "one-task-worker", "one-task-trigger"],
)
def test_every_way_of_waiting_logs_progress(
    template: str,
    deferrable: bool,
    waiter: str,
    ticking_emulator: EmulatorServer,
    dags_folder: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = template.format(dag_id="progress", requests=chat_rows(24), deferrable=deferrable)

    run = run_dag(source, "progress", dags_folder)

    logged = task_log(capfd, caplog)
    assert run.state == "success", logged[-4000:]
    # The logger name tells who waited: the worker (poke, one-task loop) or the trigger.
    seen = [int(match.group(1)) for match in PROGRESS.finditer(logged) if match.group(2).endswith(waiter)]
    assert len(set(seen)) >= 2, logged[-3000:]  # it kept the user informed as requests finished
    assert seen == sorted(seen)
    assert re.search(r"requests/s, about \d+s left", logged)  # a rate and a time left
