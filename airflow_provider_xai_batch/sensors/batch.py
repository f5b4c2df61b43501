"""Wait for an xAI batch from a DAG: :class:`XAIBatchSensor`, in poke or deferrable mode."""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    BaseSensorOperator,
    Context,
    PokeReturnValue,
    conf,
)

from airflow_provider_xai_batch.client import Batch, BatchStatus, XAINotFoundError
from airflow_provider_xai_batch.hooks.xai import XAIBatchHook
from airflow_provider_xai_batch.triggers.batch import (
    EVENT_STATUSES,
    TRANSIENT_ERRORS,
    XAIBatchTrigger,
    describe_batch,
)

# The trigger yields its own ``timeout`` event at end_time; Airflow's deferral timeout is only a
# backstop for a trigger that never ran, so it fires a little later.
DEFERRAL_GRACE_SECONDS = 300.0


def default_deferrable() -> bool:
    """``[operators] default_deferrable`` from the Airflow configuration (``False`` when unset)."""
    return bool(conf.getboolean("operators", "default_deferrable", fallback=False))


def outcome_of(batch: Mapping[str, Any], batch_status: str) -> dict[str, Any]:
    """The batch dict when ``batch_status`` is ``completed``; raise for any other terminal status.

    Failed and expired batches fail the task with xAI's own message; a cancelled batch fails too.
    None of these can be fixed by a retry, so they raise ``AirflowFailException``.

    >>> outcome_of({"batch_id": "b"}, "completed")
    {'batch_id': 'b'}
    """
    batch_id = batch.get("batch_id", "?")
    if batch_status == BatchStatus.COMPLETED.value:
        return dict(batch)
    message = batch.get("cancel_by_xai_message")
    if batch_status == BatchStatus.FAILED.value:
        raise AirflowFailException(f"xAI failed batch {batch_id}: {message or 'no reason given'}")
    if batch_status == BatchStatus.EXPIRED.value:
        state = batch.get("state") or {}
        detail = message or f"{state.get('num_pending', '?')} requests were still pending at expiry"
        raise AirflowFailException(f"Batch {batch_id} expired: {detail}")
    if batch_status == BatchStatus.CANCELLED.value:
        raise AirflowFailException(f"Batch {batch_id} was cancelled")
    raise AirflowException(f"Batch {batch_id} is not finished (status {batch_status!r})")


class XAIBatchSensor(BaseSensorOperator):
    """Wait until an xAI batch is terminal; succeed on completed, fail on failed/expired/cancelled.

    In poke (or reschedule) mode it polls from the worker; with ``deferrable=True`` it checks once,
    then hands the wait to :class:`~airflow_provider_xai_batch.triggers.batch.XAIBatchTrigger`
    and frees the worker slot. ``timeout`` bounds the wait in both modes. Returns (XCom) the
    final batch as a JSON dict, with its derived ``status``.

    :param batch_id: The batch to wait for (templated).
    :param xai_conn_id: The ``xai`` connection.
    :param poke_interval: Seconds between polls (also the trigger's poll interval).
    :param deferrable: Defer to the triggerer; defaults to ``[operators] default_deferrable``.
    :param timeout: Seconds (or a ``timedelta``) before the sensor fails with a timeout;
        defaults to ``[sensors] default_timeout``.

    >>> wait = XAIBatchSensor(  # doctest: +SKIP
    ...     task_id="wait_for_batch",
    ...     batch_id="{{ ti.xcom_pull(task_ids='create_batch') }}",
    ...     poke_interval=120,
    ...     timeout=24 * 3600,
    ...     deferrable=True,
    ... )
    """

    template_fields: Sequence[str] = ("batch_id", "xai_conn_id")
    ui_color = "#e8f0ff"

    def __init__(
        self,
        *,
        batch_id: str,
        xai_conn_id: str = XAIBatchHook.default_conn_name,
        poke_interval: float | timedelta = 60,
        deferrable: bool | None = None,
        timeout: float | timedelta | None = None,
        **kwargs: Any,
    ) -> None:
        if timeout is not None:  # Airflow 3.0 refuses None; let its default stand instead
            kwargs["timeout"] = timeout
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.batch_id = batch_id
        self.xai_conn_id = xai_conn_id
        self.deferrable = default_deferrable() if deferrable is None else bool(deferrable)

    @functools.cached_property
    def hook(self) -> XAIBatchHook:
        return XAIBatchHook(xai_conn_id=self.xai_conn_id)

    def _read_batch(self, batch_id: str) -> Batch | None:
        """The batch, or ``None`` after a transient error (the next poll tries again)."""
        try:
            return self.hook.get_batch(batch_id)
        except TRANSIENT_ERRORS as exc:
            self.log.warning("Reading batch %s failed (%s); will try again", batch_id, exc)
            return None
        except XAINotFoundError as exc:
            raise AirflowFailException(f"Batch {batch_id} not found: {exc}") from exc

    def poke(self, context: Context) -> bool | PokeReturnValue:
        batch = self._read_batch(self.batch_id)
        if batch is None:
            return False
        status = batch.status
        self.log.info("%s", describe_batch(batch))
        if not status.is_terminal:
            return False
        return PokeReturnValue(is_done=True, xcom_value=outcome_of(batch.to_xcom(), status.value))

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        end_time = time.time() + self.timeout
        # One look first: a batch that is already done needs no trip through the triggerer.
        batch = self._read_batch(self.batch_id)
        if batch is not None and batch.is_terminal:
            self.log.info("%s", describe_batch(batch))
            return outcome_of(batch.to_xcom(), batch.status.value)
        self.defer(
            trigger=XAIBatchTrigger(
                batch_id=self.batch_id,
                xai_conn_id=self.xai_conn_id,
                poll_interval=self.poke_interval,
                end_time=end_time,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + DEFERRAL_GRACE_SECONDS),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Turn the trigger's event into the task's outcome; ids come from the event itself."""
        return event_outcome(event, self.batch_id, timeout_error=AirflowSensorTimeout)


def event_outcome(
    event: Any, expected_batch_id: str | None, *, timeout_error: type[Exception] = AirflowException
) -> dict[str, Any]:
    """Check a trigger event against the allow-list and return the completed batch dict, or raise.

    The batch id comes from the event itself (a resumed task is a new operator instance); when the
    caller knows which batch it waited for, ``expected_batch_id`` must match it.

    >>> event_outcome({"status": "success", "batch_id": "b", "batch_status": "completed",
    ...                "batch": {"batch_id": "b", "status": "completed"}, "message": "done"}, "b")["status"]
    'completed'
    """
    if not isinstance(event, Mapping) or event.get("status") not in EVENT_STATUSES:
        raise AirflowException(f"Unexpected event from the batch trigger: {event!r}")
    batch_id = event.get("batch_id")
    if not isinstance(batch_id, str) or not batch_id:
        raise AirflowException(f"Trigger event names no batch: {event!r}")
    if expected_batch_id is not None and batch_id != expected_batch_id:
        raise AirflowException(f"Trigger event is for batch {batch_id}, not {expected_batch_id}")
    message = str(event.get("message") or "")
    if event["status"] == "timeout":
        raise timeout_error(message or f"Timed out waiting for batch {batch_id}")
    if event["status"] == "error":
        raise AirflowException(message or f"Waiting for batch {batch_id} failed")
    batch = event.get("batch")
    batch_status = event.get("batch_status")
    terminal = {status.value for status in BatchStatus if status.is_terminal}
    if not isinstance(batch, Mapping) or batch.get("batch_id") != batch_id or batch_status not in terminal:
        raise AirflowException(f"Trigger reported success without a finished batch: {event!r}")
    return outcome_of(batch, str(batch_status))
