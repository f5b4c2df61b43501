"""The sensor and the one-task operator outside a DAG run: events, deferral, defaults, on_kill."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pytest
from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    TaskDeferred,
)
from support.batch_requests import chat_rows
from waiting_support import seed_batch

from airflow_provider_xai_batch.client import XAINotFoundError
from airflow_provider_xai_batch.exceptions import (
    XAIBatchAuthenticationError,
    XAIBatchCancelledError,
    XAIBatchExpiredError,
    XAIBatchFailedError,
    XAIBatchNotFoundError,
    XAIBatchTaskError,
    XAIBatchTransientError,
    XAIBatchWaitTimeout,
)
from airflow_provider_xai_batch.operators.one_task import XAIBatchOperator
from airflow_provider_xai_batch.sensors.batch import XAIBatchSensor
from airflow_provider_xai_batch.triggers.batch import XAIBatchTrigger
from airflow_provider_xai_batch.waiting import event_outcome

if TYPE_CHECKING:
    from airflow.sdk import Context


def event(status: str = "success", batch_status: str | None = "completed", **batch: Any) -> dict[str, Any]:
    body = {"batch_id": "batch_1", "state": {"num_pending": 0}, "status": batch_status, **batch}
    return {
        "status": status,
        "batch_id": "batch_1",
        "batch_status": batch_status,
        "batch": body if batch_status else None,
        "message": f"{status} message",
    }


def context() -> Context:
    # A stub task instance: what the operator reads of it, nothing more.
    ti = SimpleNamespace(dag_id="d", task_id="run_batch", run_id="r1", map_index=-1, try_number=1)
    return cast("Context", {"ti": ti})


# -- events --------------------------------------------------------------------------------------


def test_completed_event_returns_the_batch() -> None:
    assert event_outcome(event(), "batch_1")["status"] == "completed"


def test_failed_event_fails_with_xais_message() -> None:
    rejected = event(batch_status="failed", cancel_by_xai_message="JSONL file validation failed: line 2")
    with pytest.raises(XAIBatchFailedError, match="JSONL file validation failed: line 2") as raised:
        event_outcome(rejected, "batch_1")
    assert isinstance(raised.value, AirflowFailException)


@pytest.mark.parametrize(
    ("batch_status", "expected"), [("cancelled", XAIBatchCancelledError), ("expired", XAIBatchExpiredError)]
)
def test_cancelled_and_expired_fail_without_retry(batch_status: str, expected: type[Exception]) -> None:
    with pytest.raises(expected, match=batch_status) as raised:
        event_outcome(event(batch_status=batch_status), "batch_1")
    assert isinstance(raised.value, AirflowFailException)


def test_a_timeout_event_fails_without_retry_as_a_sensor_timeout() -> None:
    with pytest.raises(XAIBatchWaitTimeout, match="timeout message") as raised:
        event_outcome(event("timeout", "processing"), "batch_1")
    assert isinstance(raised.value, AirflowSensorTimeout)
    assert not isinstance(raised.value, AirflowFailException)


def test_an_error_event_without_a_kind_leaves_the_retry_to_airflow() -> None:
    with pytest.raises(XAIBatchTaskError, match="error message") as raised:
        event_outcome(event("error", None), "batch_1")
    assert not isinstance(raised.value, AirflowFailException)  # an outage, a missing connection ...


@pytest.mark.parametrize(
    ("kind", "expected", "permanent"),
    [
        ("not_found", XAIBatchNotFoundError, True),
        ("authentication", XAIBatchAuthenticationError, True),
        ("transient", XAIBatchTransientError, False),
        ("no-such-kind", XAIBatchTaskError, False),
    ],
)
def test_an_error_event_raises_the_task_error_its_kind_names(
    kind: str, expected: type[Exception], permanent: bool
) -> None:
    with pytest.raises(expected, match="error message") as raised:
        event_outcome({**event("error", None), "error_kind": kind}, "batch_1")
    assert type(raised.value) is expected
    assert isinstance(raised.value, AirflowFailException) is permanent


@pytest.mark.parametrize(
    "bad",
    [
        None,
        "success",
        {"status": "done", "batch_id": "batch_1"},
        {**event(), "batch_id": ""},
        {**event(), "batch_id": "batch_other"},
        {**event(), "batch_status": "processing"},
        {**event(), "batch": None},
    ],
    ids=["none", "string", "unknown-status", "no-id", "other-batch", "not-terminal", "no-batch"],
)
def test_events_outside_the_allow_list_are_refused(bad: Any) -> None:
    with pytest.raises(AirflowException):
        event_outcome(bad, "batch_1")


# -- sensor ----------------------------------------------------------------------------------------


def test_deferrable_default_follows_the_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    assert XAIBatchSensor(task_id="s1", batch_id="b").deferrable is True
    assert XAIBatchOperator(task_id="o1", name="n", requests=[]).deferrable is True
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    assert XAIBatchSensor(task_id="s2", batch_id="b").deferrable is False
    assert XAIBatchSensor(task_id="s3", batch_id="b", deferrable=True).deferrable is True


def test_deferring_sensor_hands_a_deadline_to_the_trigger(emulator: Any, xai_connection: str) -> None:
    emulator.config.update({"processing_rate": 0.1})
    batch_id = seed_batch(emulator, requests=10)
    sensor = XAIBatchSensor(task_id="wait", batch_id=batch_id, poke_interval=30, timeout=600, deferrable=True)

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context())

    trigger = deferred.value.trigger
    assert isinstance(trigger, XAIBatchTrigger)
    _, kwargs = trigger.serialize()
    assert kwargs["batch_id"] == batch_id
    assert kwargs["poll_interval"] == 30
    assert kwargs["cancel_on_kill"] is False  # the sensor does not own the batch
    assert abs(kwargs["end_time"] - (time.time() + 600)) < 5
    assert deferred.value.method_name == "execute_complete"


def test_deferrable_sensor_returns_at_once_when_the_batch_is_done(emulator: Any, xai_connection: str) -> None:
    batch_id = seed_batch(emulator, requests=2)  # processing_rate 0: done at once
    sensor = XAIBatchSensor(task_id="wait", batch_id=batch_id, deferrable=True)

    assert sensor.execute(context())["status"] == "completed"


def test_poke_tolerates_a_transient_error_and_fails_on_an_unknown_batch(
    emulator: Any, xai_connection: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_XAI_DEFAULT",
        f'{{"conn_type": "xai", "password": "{emulator.config.api_key}", "host": "{emulator.url}", '
        '"extra": {"max_retries": 0}}',
    )
    batch_id = seed_batch(emulator, requests=1)
    sensor = XAIBatchSensor(task_id="wait", batch_id=batch_id)
    emulator.faults.inject("get_batch", status=503)

    assert sensor.poke(context()) is False
    assert sensor.poke(context()).xcom_value["status"] == "completed"  # type: ignore[union-attr, index]
    with pytest.raises(XAIBatchNotFoundError, match="404") as raised:
        XAIBatchSensor(task_id="wait2", batch_id="batch_missing").poke(context())
    assert isinstance(raised.value, AirflowFailException)
    assert isinstance(raised.value.__cause__, XAINotFoundError)


# -- one-task operator -----------------------------------------------------------------------------


def test_operator_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        XAIBatchOperator(task_id="a", name="n")
    with pytest.raises(ValueError, match="exactly one"):
        XAIBatchOperator(task_id="b", name="n", requests=[], source="s3://b/*.jsonl")
    with pytest.raises(ValueError, match="wait_for_completion"):
        XAIBatchOperator(task_id="c", name="n", requests=[], output_path="/tmp/x", wait_for_completion=False)


def test_deferring_operator_asks_the_trigger_to_cancel_on_kill(emulator: Any, xai_connection: str) -> None:
    emulator.config.update({"processing_rate": 0.1})
    operator = XAIBatchOperator(
        task_id="run_batch", name="n", requests=chat_rows(5), deferrable=True, poll_interval=5, timeout=120
    )

    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context())

    _, kwargs = deferred.value.trigger.serialize()
    assert kwargs["cancel_on_kill"] is True
    assert kwargs["batch_id"] == operator.batch_id
    assert abs(kwargs["end_time"] - (time.time() + 120)) < 5
    assert emulator.service.get_batch(operator.batch_id)["state"]["num_requests"] == 5


def test_operator_without_waiting_returns_the_batch_after_adding(emulator: Any, xai_connection: str) -> None:
    emulator.config.update({"processing_rate": 0.1})
    operator = XAIBatchOperator(
        task_id="run_batch", name="n", requests=chat_rows(3), wait_for_completion=False
    )

    batch = operator.execute(context())

    assert (batch["status"], batch["state"]["num_requests"]) == ("processing", 3)


@pytest.mark.parametrize("cancel_on_kill", [True, False])
def test_operator_on_kill_cancels_its_running_batch(
    emulator: Any, xai_connection: str, cancel_on_kill: bool
) -> None:
    emulator.config.update({"processing_rate": 0.1})
    batch_id = seed_batch(emulator, requests=10)
    operator = XAIBatchOperator(task_id="run_batch", name="n", requests=[], cancel_on_kill=cancel_on_kill)
    operator.batch_id = batch_id

    operator.on_kill()

    cancelled = emulator.service.get_batch(batch_id)["cancel_time"] is not None
    assert cancelled is cancel_on_kill


def test_operator_on_kill_leaves_a_finished_batch_alone(emulator: Any, xai_connection: str) -> None:
    batch_id = seed_batch(emulator, requests=2)
    operator = XAIBatchOperator(task_id="run_batch", name="n", requests=[])
    operator.batch_id = batch_id

    operator.on_kill()

    assert emulator.calls("cancel_batch") == 0


# -- the synchronous waits decide as the trigger does ------------------------------------------------


def test_poke_reads_the_connection_again_after_an_authentication_error(
    emulator: Any, xai_connection: str
) -> None:
    batch_id = seed_batch(emulator, requests=2)
    emulator.faults.inject("get_batch", status=401)

    result = XAIBatchSensor(task_id="wait", batch_id=batch_id).poke(context())

    assert result.xcom_value["status"] == "completed"  # type: ignore[union-attr, index]
    assert emulator.answers(401, "get_batch") == 1


def test_waiting_in_the_worker_reads_the_connection_again_after_an_authentication_error(
    emulator: Any, xai_connection: str
) -> None:
    emulator.config.update({"processing_rate": 20})

    class RejectedOnceWhileWaiting(XAIBatchOperator):
        def _wait(self, *args: Any) -> dict[str, Any]:
            emulator.faults.inject("get_batch", status=401)  # the first poll is refused
            return super()._wait(*args)

    operator = RejectedOnceWhileWaiting(
        task_id="run_batch", name="n", requests=chat_rows(3), poll_interval=0.05
    )

    batch = operator.execute(context())

    assert (batch["status"], batch["state"]["num_success"]) == ("completed", 3)
    assert emulator.answers(401, "get_batch") == 1
