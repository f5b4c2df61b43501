"""The event contract between whoever polls a batch and whoever resumes the task.

The trigger yields exactly one event, and the synchronous waits (sensor poke, the one-task
operator) build the very same payload, so one function turns any of them into the task's outcome::

    {"status": "success" | "error" | "timeout",
     "batch_id": "batch_...",
     "batch_status": "completed" | "failed" | ... | None,   # None when the batch was never read
     "batch": {...} | None,                                # Batch.to_xcom() of the last poll
     "message": "human-readable summary",
     "progress": {...} | None,                             # batch_figures() of the last poll
     "error_kind": "not_found" | "authentication" | ... | None}   # errors only: which task error

``success`` means the batch reached a terminal status (completed, failed, cancelled or expired);
:func:`outcome_of` decides what each one means. ``error`` means polling could not go on (unknown
batch, bad key, too many transient errors in a row), and ``error_kind`` names the
:mod:`~airflow_provider_xai_batch.exceptions` class the task then raises (a missing or unknown
kind is the retryable :class:`~airflow_provider_xai_batch.exceptions.XAIBatchTaskError`);
``timeout`` means the deadline passed first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_xai_batch.client import Batch, BatchStatus
from airflow_provider_xai_batch.exceptions import (
    XAIBatchCancelledError,
    XAIBatchExpiredError,
    XAIBatchFailedError,
    XAIBatchTaskError,
    XAIBatchWaitTimeout,
    error_from_event,
)
from airflow_provider_xai_batch.waiting.progress import batch_figures

EVENT_STATUSES = frozenset({"success", "error", "timeout"})
TERMINAL_STATUSES = frozenset(status.value for status in BatchStatus if status.is_terminal)


def batch_event(
    status: str, batch_id: str, batch: Batch | None, message: str, *, error_kind: str | None = None
) -> dict[str, Any]:
    """The one event payload (JSON-safe) that ends a wait.

    >>> batch_event("error", "batch_1", None, "not found")["batch_status"] is None
    True
    """
    if status not in EVENT_STATUSES:
        raise ValueError(f"unknown event status {status!r}")
    return {
        "status": status,
        "batch_id": batch_id,
        "batch_status": batch.status.value if batch is not None else None,
        "batch": batch.to_xcom() if batch is not None else None,
        "message": message,
        "error_kind": error_kind,
        # The same figures as the task log and the batches page (done, percent, cost so far ...).
        "progress": batch_figures(batch).to_dict() if batch is not None else None,
    }


def describe_batch(batch: Batch) -> str:
    """A one-line summary of a batch, with xAI's own message when it rejected the batch.

    >>> describe_batch(Batch(batch_id="b", cancel_by_xai_message="line 2: invalid JSON"))
    'Batch b failed: line 2: invalid JSON'
    """
    state = batch.state
    if batch.cancel_by_xai_message:
        return f"Batch {batch.batch_id} failed: {batch.cancel_by_xai_message}"
    return (
        f"Batch {batch.batch_id} is {batch.status.value}: {state.num_success} succeeded, "
        f"{state.num_error} failed, {state.num_cancelled} cancelled, {state.num_pending} pending "
        f"of {state.num_requests}"
    )


def outcome_of(batch: Mapping[str, Any], batch_status: str) -> dict[str, Any]:
    """The batch dict when ``batch_status`` is ``completed``; raise for any other terminal status.

    Failed and expired batches fail the task with xAI's own message; a cancelled batch fails too.
    No retry can fix any of these: each raises an
    :class:`~airflow_provider_xai_batch.exceptions.XAIBatchUnsuccessfulError`.

    >>> outcome_of({"batch_id": "b"}, "completed")
    {'batch_id': 'b'}
    """
    batch_id = batch.get("batch_id", "?")
    if batch_status == BatchStatus.COMPLETED.value:
        return dict(batch)
    message = batch.get("cancel_by_xai_message")
    if batch_status == BatchStatus.FAILED.value:
        raise XAIBatchFailedError(f"xAI failed batch {batch_id}: {message or 'no reason given'}")
    if batch_status == BatchStatus.EXPIRED.value:
        state = batch.get("state") or {}
        detail = message or f"{state.get('num_pending', '?')} requests were still pending at expiry"
        raise XAIBatchExpiredError(f"Batch {batch_id} expired: {detail}")
    if batch_status == BatchStatus.CANCELLED.value:
        raise XAIBatchCancelledError(f"Batch {batch_id} was cancelled")
    raise XAIBatchTaskError(f"Batch {batch_id} is not finished (status {batch_status!r})")


def event_outcome(event: Any, expected_batch_id: str | None) -> dict[str, Any]:
    """Check an event against the allow-list and return the completed batch dict, or raise.

    The batch id comes from the event itself (a resumed task is a new operator instance); when the
    caller knows which batch it waited for, ``expected_batch_id`` must match it. A ``timeout``
    raises :class:`~airflow_provider_xai_batch.exceptions.XAIBatchWaitTimeout`, an ``error`` the
    task error its ``error_kind`` names.

    >>> event_outcome({"status": "success", "batch_id": "b", "batch_status": "completed",
    ...                "batch": {"batch_id": "b", "status": "completed"}, "message": "done"}, "b")["status"]
    'completed'
    """
    if not isinstance(event, Mapping) or event.get("status") not in EVENT_STATUSES:
        raise XAIBatchTaskError(f"Unexpected event from the batch trigger: {event!r}")
    batch_id = event.get("batch_id")
    if not isinstance(batch_id, str) or not batch_id:
        raise XAIBatchTaskError(f"Trigger event names no batch: {event!r}")
    if expected_batch_id is not None and batch_id != expected_batch_id:
        raise XAIBatchTaskError(f"Trigger event is for batch {batch_id}, not {expected_batch_id}")
    message = str(event.get("message") or "")
    if event["status"] == "timeout":
        raise XAIBatchWaitTimeout(message or f"Timed out waiting for batch {batch_id}")
    if event["status"] == "error":
        raise error_from_event(event.get("error_kind"), message or f"Waiting for batch {batch_id} failed")
    batch = event.get("batch")
    batch_status = event.get("batch_status")
    if (
        not isinstance(batch, Mapping)
        or batch.get("batch_id") != batch_id
        or batch_status not in TERMINAL_STATUSES
    ):
        raise XAIBatchTaskError(f"Trigger reported success without a finished batch: {event!r}")
    return outcome_of(batch, str(batch_status))
