"""An outage during a wait: tolerated for ``outage_tolerance`` seconds, then a message that says what to do.

The decision is tested on the poller with a clock the test moves (nothing sleeps); one trigger
run end to end polls a closed port with a tolerance of a fraction of a second; and
``XAIBatchOperator`` runs whole DAGs (``dag.test()``) whose service stops right after the input is
in, waiting in the worker (on a clock the test moves) and deferred (a fraction of a second).
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred
from support.batch_requests import chat_rows
from support.dags import task_states, task_tries

from airflow_provider_xai_batch.client import Batch, BatchState, XAIConnectionError, XAIServerError
from airflow_provider_xai_batch.operators import one_task
from airflow_provider_xai_batch.operators.one_task import XAIBatchOperator
from airflow_provider_xai_batch.triggers.batch import XAIBatchTrigger
from airflow_provider_xai_batch.waiting import DEFAULT_OUTAGE_TOLERANCE, BatchPoller, transient_backoff

if TYPE_CHECKING:
    from airflow.sdk import Context


def exact(delay: float) -> float:
    return delay


def running() -> Batch:
    return Batch(batch_id="b1", state=BatchState(num_requests=4, num_pending=3, num_success=1))


def ride_out(poller: BatchPoller, start: float = 0.0) -> tuple[float, list[float], dict[str, Any]]:
    """Fail every poll, advancing the clock by each step's delay; return when it ended, the delays, the event."""
    now = start
    delays: list[float] = []
    while True:
        step = poller.on_error(XAIConnectionError("connection refused"), now=now)
        if step.event is not None:
            return now, delays, step.event
        delays.append(step.delay)
        now += step.delay


def test_the_default_gives_up_after_the_tolerance_not_after_forty_minutes() -> None:
    poller = BatchPoller("b1", poll_interval=5, poll_jitter=exact, backoff_jitter=exact)
    ended, delays, event = ride_out(poller, start=1000.0)
    assert ended - 1000.0 == DEFAULT_OUTAGE_TOLERANCE == 900.0
    # The backoff is unchanged until the tolerance cuts the last sleep short.
    assert delays[:4] == [transient_backoff(5, n, jitter=exact) for n in (1, 2, 3, 4)]
    assert sum(delays) == 900.0
    assert event["status"] == "error" and event["error_kind"] == "transient"
    assert "failed for 900s (outage tolerance 900s)" in event["message"]
    assert "connection refused" in event["message"]
    assert "may still be running at xAI" in event["message"]
    assert "clear this task to resume the wait" in event["message"]


def test_a_longer_tolerance_waits_longer_than_the_old_count_of_failed_polls() -> None:
    poller = BatchPoller(
        "b1", poll_interval=5, outage_tolerance=3 * 3600, poll_jitter=exact, backoff_jitter=exact
    )
    ended, delays, event = ride_out(poller)
    assert ended == 3 * 3600
    assert len(delays) > 11 and max(delays) == 600.0
    assert "failed for 10800s" in event["message"]


def test_a_good_poll_ends_the_outage_and_the_next_one_starts_from_zero() -> None:
    poller = BatchPoller(
        "b1", poll_interval=60, outage_tolerance=300, poll_jitter=exact, backoff_jitter=exact
    )
    assert not poller.on_error(XAIServerError(503, None, "busy"), now=0).done
    assert not poller.on_error(XAIServerError(503, None, "busy"), now=240).done
    assert not poller.on_batch(running(), now=290).done
    assert not poller.on_error(XAIServerError(503, None, "busy"), now=350).done  # a new outage
    assert poller.on_error(XAIServerError(503, None, "busy"), now=600).event is None
    assert poller.on_error(XAIServerError(503, None, "busy"), now=650).event is not None


def test_the_count_of_failed_polls_still_applies_when_it_comes_first() -> None:
    poller = BatchPoller(
        "b1", poll_interval=5, max_transient_errors=2, poll_jitter=exact, backoff_jitter=exact
    )
    _, delays, event = ride_out(poller)
    assert delays == [5.0, 10.0]
    assert "3 times in a row" in event["message"]
    assert "clear this task to resume the wait" in event["message"]


def test_no_tolerance_leaves_it_to_the_count() -> None:
    poller = BatchPoller(
        "b1", poll_interval=5, outage_tolerance=None, max_transient_errors=None, poll_jitter=exact
    )
    steps = [poller.on_error(XAIConnectionError("down"), now=n * 600.0) for n in range(100)]
    assert not any(step.done for step in steps)


def test_a_negative_tolerance_is_refused() -> None:
    with pytest.raises(ValueError, match="outage_tolerance"):
        BatchPoller("b1", outage_tolerance=-1)


def closed_port() -> str:
    """A loopback URL nothing listens on: bound then closed, so connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_a_trigger_polling_a_stopped_service_ends_with_the_resume_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_XAI_OUTAGE",
        f'{{"conn_type": "xai", "password": "test-key", "host": "{closed_port()}", '
        '"extra": {"connect_retries": 0, "max_retries": 0}}',
    )
    trigger = XAIBatchTrigger(
        "batch_outage", "xai_outage", poll_interval=0.05, outage_tolerance=0.2, max_transient_errors=1000
    )
    assert trigger.serialize()[1]["outage_tolerance"] == 0.2

    event = asyncio.run(trigger.wait())

    assert (event["status"], event["batch_id"], event["error_kind"]) == ("error", "batch_outage", "transient")
    assert "(outage tolerance 0.2s)" in event["message"]
    assert "may still be running at xAI: clear this task to resume the wait" in event["message"]


# The task records how it failed (class and message): the message is what a user reads in the log.
OPERATOR_DAG = """
import json, pathlib
import pendulum
from airflow.sdk import DAG
from airflow_provider_xai_batch.operators.one_task import XAIBatchOperator


def record(error):
    pathlib.Path({error_file!r}).write_text(json.dumps([type(error).__name__, str(error)]))


class Recording(XAIBatchOperator):
    def execute(self, context):
        try:
            return super().execute(context)
        except Exception as error:
            if type(error).__name__ != "TaskDeferred":
                record(error)
            raise

    def execute_complete(self, context, **kwargs):
        try:
            return super().execute_complete(context, **kwargs)
        except Exception as error:
            record(error)
            raise


with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    Recording(task_id="run", name="outage", requests={requests!r}, deferrable={deferrable!r},
              poll_interval={poll_interval!r}, outage_tolerance={tolerance!r}, timeout=3600, retries=0)
"""


def stop_the_service_once_the_input_is_in(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch exists and holds its requests; then the service goes away for the rest of the test."""
    send_input = one_task.send_input

    def send_then_stop(*args: Any, **kwargs: Any) -> Any:
        report = send_input(*args, **kwargs)
        emulator.stop()  # its port is closed now: every poll is refused
        return report

    monkeypatch.setattr(one_task, "send_input", send_then_stop)


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "deferred"])
def test_the_operator_rides_out_an_outage_for_its_tolerance_then_says_clear_to_resume(
    run_dag: Callable[..., Any],
    xai_conn: Callable[..., str],
    emulator: Any,
    manual_clock: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    deferrable: bool,
) -> None:
    # No retries inside the client: each poll is one refused connection.
    xai_conn(connect_retries=0, max_retries=0)
    stop_the_service_once_the_input_is_in(emulator, monkeypatch)
    # The worker's wait moves this clock instead of sleeping, so it can tolerate a whole minute;
    # the deferred wait runs on the real clock in the trigger, so it tolerates half a second.
    monkeypatch.setattr(one_task, "wall_clock", manual_clock.now)
    monkeypatch.setattr(one_task, "pause", manual_clock.advance)
    tolerance = 0.5 if deferrable else 60.0
    started = manual_clock.now()
    error_file = tmp_path / "error.json"
    dag_id = f"outage_{'deferred' if deferrable else 'worker'}"
    source = OPERATOR_DAG.format(
        dag_id=dag_id,
        requests=chat_rows(3),
        deferrable=deferrable,
        poll_interval=0.05 if deferrable else 5.0,
        tolerance=tolerance,
        error_file=str(error_file),
    )

    run = run_dag(source, dag_id)

    assert run.state == "failed", task_states(run)
    assert task_tries(run)["run"] == 1
    kind, message = json.loads(error_file.read_text())
    # Both ways of waiting end in the same retryable task error with the same message.
    assert kind == "XAIBatchTransientError"
    assert f"(outage tolerance {tolerance:g}s)" in message
    assert "may still be running at xAI: clear this task to resume the wait" in message
    if not deferrable:
        assert "failed for 60s" in message
        # The wait went on until the tolerance ran out, on the test's clock, and not past it.
        assert manual_clock.now() - started == pytest.approx(60.0)
    assert emulator.service.counts()["batches"] == 1  # the batch is still there to resume


def context() -> Context:
    # A stub task instance: what the operator reads of it, nothing more.
    ti = SimpleNamespace(dag_id="d", task_id="run", run_id="r1", map_index=-1, try_number=1)
    return cast("Context", {"ti": ti})


def test_the_operator_hands_its_tolerance_to_the_trigger_and_refuses_a_negative_one(
    emulator: Any, xai_connection: str
) -> None:
    emulator.config.update({"processing_rate": 0.1})
    operator = XAIBatchOperator(
        task_id="run", name="n", requests=chat_rows(2), deferrable=True, outage_tolerance=1800
    )
    assert XAIBatchOperator(task_id="d", name="n", requests=[]).outage_tolerance == DEFAULT_OUTAGE_TOLERANCE
    with pytest.raises(ValueError, match="outage_tolerance"):
        XAIBatchOperator(task_id="neg", name="n", requests=[], outage_tolerance=-1)

    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context())

    assert deferred.value.trigger.serialize()[1]["outage_tolerance"] == 1800.0
