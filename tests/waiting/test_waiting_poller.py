"""The one poller every wait uses, without a network: what each poll result means."""

from __future__ import annotations

import pytest

from airflow_provider_xai_batch.client import (
    Batch,
    BatchState,
    XAIAuthenticationError,
    XAIConnectionError,
    XAINotFoundError,
    XAIServerError,
)
from airflow_provider_xai_batch.waiting import BatchPoller


def exact(delay: float) -> float:
    return delay


def running(done: int = 1, total: int = 4) -> Batch:
    return Batch(
        batch_id="b1", state=BatchState(num_requests=total, num_pending=total - done, num_success=done)
    )


def finished(total: int = 4) -> Batch:
    return Batch(batch_id="b1", state=BatchState(num_requests=total, num_success=total))


def poller(**kwargs: object) -> BatchPoller:
    options: dict[str, object] = {"poll_interval": 10.0, "poll_jitter": exact, "backoff_jitter": exact}
    options.update(kwargs)
    return BatchPoller("b1", **options)  # type: ignore[arg-type]


def test_a_running_batch_means_sleep_one_interval_and_a_finished_one_ends_the_wait() -> None:
    waiting = poller()
    step = waiting.on_batch(running(), now=0)
    assert (step.done, step.delay, step.renew) == (False, 10.0, False)
    event = waiting.on_batch(finished(), now=10).event
    assert event is not None
    assert (event["status"], event["batch_status"], event["batch"]["state"]["num_success"]) == (
        "success",
        "completed",
        4,
    )


def test_sleeps_stop_at_the_deadline_and_a_poll_after_it_ends_with_timeout() -> None:
    waiting = poller(end_time=100.0)
    assert waiting.on_batch(running(), now=95).delay == 5.0
    waiting.on_error(XAIServerError(503, None, "busy"), now=100)  # the last poll failed
    event = waiting.on_batch(running(2), now=101).event
    assert event is not None and event["status"] == "timeout"
    assert event["batch"]["state"]["num_success"] == 2  # the last batch seen
    assert "still processing" in event["message"]


def test_timeout_names_the_last_failed_poll() -> None:
    waiting = poller(end_time=100.0)
    waiting.on_batch(running(), now=50)
    event = waiting.on_error(XAIConnectionError("connection refused"), now=120).event
    assert event is not None and event["status"] == "timeout"
    assert "last poll: connection refused" in event["message"]


def test_transient_errors_back_off_then_give_up_with_the_original_error() -> None:
    waiting = poller(max_transient_errors=2)
    first = waiting.on_error(XAIServerError(503, None, "busy"), now=0)
    second = waiting.on_error(XAIServerError(503, None, "busy"), now=10)
    assert (first.delay, second.delay) == (10.0, 20.0)
    assert first.warning is not None and "attempt 1 of 3" in first.warning
    error = XAIServerError(502, None, "bad gateway")
    third = waiting.on_error(error, now=30)
    assert third.event is not None and third.event["status"] == "error"
    assert "3 times in a row" in third.event["message"]
    assert third.error is error


def test_a_good_poll_resets_the_transient_count() -> None:
    waiting = poller(max_transient_errors=1)
    waiting.on_error(XAIServerError(503, None, "busy"), now=0)
    waiting.on_batch(running(), now=10)
    assert not waiting.on_error(XAIServerError(503, None, "busy"), now=20).done


def test_without_a_limit_transient_errors_never_end_the_wait() -> None:
    waiting = poller(max_transient_errors=None)
    steps = [waiting.on_error(XAIConnectionError("down"), now=float(n)) for n in range(50)]
    assert not any(step.done for step in steps)
    assert steps[-1].delay == 600.0  # capped


def test_an_authentication_error_reads_the_connection_again_once() -> None:
    waiting = poller()
    rejected = XAIAuthenticationError(401, None, "no key")
    assert waiting.on_error(rejected, now=0).renew
    final = waiting.on_error(rejected, now=1)
    assert final.event is not None and final.event["status"] == "error"
    assert final.error is rejected


@pytest.mark.parametrize(
    ("error", "text"),
    [(XAINotFoundError(404, None, "no such batch"), "404"), (KeyError("num_requests"), "KeyError")],
    ids=["api-error", "unexpected"],
)
def test_other_errors_end_the_wait_at_once(error: Exception, text: str) -> None:
    step = poller().on_error(error, now=0)
    assert step.event is not None and step.event["status"] == "error"
    assert text in step.event["message"]
    assert step.error is error
