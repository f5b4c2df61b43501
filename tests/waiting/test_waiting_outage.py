"""An outage during a wait: tolerated for ``outage_tolerance`` seconds, then a message that says what to do.

The decision is tested on the poller with a clock the test moves (nothing sleeps); one trigger
run end to end polls a closed port with a tolerance of a fraction of a second.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from airflow_provider_xai_batch.client import Batch, BatchState, XAIConnectionError, XAIServerError
from airflow_provider_xai_batch.triggers.batch import XAIBatchTrigger
from airflow_provider_xai_batch.waiting import DEFAULT_OUTAGE_TOLERANCE, BatchPoller, transient_backoff


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
