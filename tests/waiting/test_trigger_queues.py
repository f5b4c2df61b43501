"""Our waits follow Airflow's trigger queues (3.2+): a deferred wait runs on its task's ``queue``.

With ``[triggerer] queues_enabled = True``, the task runner gives a deferred task's trigger the
task's ``queue``, unless the trigger opts out (``supports_triggerer_queue = False`` up to 3.3,
``trigger_queue_inherited_from_task = False`` from 3.4). These tests defer the real sensor and
operator against the emulator and hand the deferral to the task runner's own step that records it.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pytest
import structlog
from airflow.providers.common.compat.sdk import TaskDeferred
from support.batch_requests import chat_rows
from waiting_support import seed_batch

from airflow_provider_xai_batch.operators.one_task import XAIBatchOperator
from airflow_provider_xai_batch.sensors.batch import XAIBatchSensor
from airflow_provider_xai_batch.triggers.batch import XAIBatchTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

task_runner = pytest.importorskip("airflow.sdk.execution_time.task_runner")
comms = pytest.importorskip("airflow.sdk.execution_time.comms")
if "queue" not in comms.DeferTask.model_fields:
    pytest.skip("trigger queues arrived in Airflow 3.2", allow_module_level=True)

QUEUE = "xai-waits"


def context() -> Context:
    # A stub task instance: only the fields these tasks read before they defer.
    return cast(
        "Context",
        {"ti": SimpleNamespace(dag_id="d", task_id="wait", run_id="r1", map_index=-1, try_number=1)},
    )


def recorded_queue(deferred: TaskDeferred, task: Any) -> str | None:
    """The trigger queue the task runner records for this deferral (what the triggerers filter on)."""
    ti = SimpleNamespace(dag_id="d", task_id=task.task_id, run_id="r1", task=task)
    message, _ = task_runner._defer_task(deferred, ti, structlog.get_logger())
    queue: str | None = message.queue
    return queue


def deferred_sensor(emulator: Any) -> tuple[TaskDeferred, XAIBatchSensor]:
    emulator.config.update({"processing_rate": 0.1})
    batch_id = seed_batch(emulator, requests=10)
    sensor = XAIBatchSensor(task_id="wait", batch_id=batch_id, deferrable=True, queue=QUEUE)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context())
    return deferred.value, sensor


def test_no_trigger_opts_out_of_the_tasks_queue() -> None:
    for attribute in ("supports_triggerer_queue", "trigger_queue_inherited_from_task"):
        assert getattr(XAIBatchTrigger, attribute, True) is True


def test_a_deferred_sensor_waits_on_its_tasks_queue(
    emulator: Any, xai_connection: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__TRIGGERER__QUEUES_ENABLED", "True")
    deferred, sensor = deferred_sensor(emulator)

    assert isinstance(deferred.trigger, XAIBatchTrigger)
    assert recorded_queue(deferred, sensor) == QUEUE


def test_a_deferred_operator_waits_on_its_tasks_queue(
    emulator: Any, xai_connection: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__TRIGGERER__QUEUES_ENABLED", "True")
    emulator.config.update({"processing_rate": 0.1})
    operator = XAIBatchOperator(
        task_id="run_batch", name="n", requests=chat_rows(3), deferrable=True, queue=QUEUE
    )
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context())

    assert recorded_queue(deferred.value, operator) == QUEUE


def test_without_trigger_queues_any_triggerer_takes_the_wait(
    emulator: Any, xai_connection: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__TRIGGERER__QUEUES_ENABLED", "False")
    deferred, sensor = deferred_sensor(emulator)

    assert recorded_queue(deferred, sensor) is None
