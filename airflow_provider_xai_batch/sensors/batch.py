"""Wait for an xAI batch from a DAG: :class:`XAIBatchSensor`, in poke or deferrable mode."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.providers.common.compat.sdk import (
    AirflowSensorTimeout,
    BaseSensorOperator,
    Context,
    PokeReturnValue,
)

from airflow_provider_xai_batch.exceptions import XAIBatchWaitTimeout
from airflow_provider_xai_batch.hooks.xai import XAIBatchHook
from airflow_provider_xai_batch.links import XAIBatchLink
from airflow_provider_xai_batch.task_hook import task_hook
from airflow_provider_xai_batch.triggers.batch import XAIBatchTrigger
from airflow_provider_xai_batch.waiting import (
    DEFAULT_OUTAGE_TOLERANCE,
    DEFAULT_PROGRESS_INTERVAL,
    BatchPoller,
    PollStep,
    default_deferrable,
    deferral_timeout,
    event_outcome,
)


class XAIBatchSensor(BaseSensorOperator):
    """Wait until an xAI batch is terminal; succeed on completed, fail on failed/expired/cancelled.

    In poke (or reschedule) mode it polls from the worker; with ``deferrable=True`` it checks once,
    then hands the wait to :class:`~airflow_provider_xai_batch.triggers.batch.XAIBatchTrigger`
    and frees the worker slot. Returns (XCom) the final batch as a JSON dict, with its derived
    ``status``.

    Failures raise :mod:`~airflow_provider_xai_batch.exceptions` classes. A batch that failed,
    expired or was cancelled, an unknown batch and a wrong key fail the task at once, whatever its
    ``retries``; 429, 5xx and network trouble are polled through (poke) or tolerated with backoff
    (deferred). ``timeout`` bounds the wait in both modes and raises
    :class:`~airflow_provider_xai_batch.exceptions.XAIBatchWaitTimeout`, without a retry, as any
    Airflow sensor's timeout; the batch keeps running.

    :param batch_id: The batch to wait for (templated).
    :param xai_conn_id: The ``xai`` connection.
    :param poke_interval: Seconds between polls (also the trigger's poll interval).
    :param deferrable: Defer to the triggerer; defaults to ``[operators] default_deferrable``.
    :param timeout: Seconds (or a ``timedelta``) before the sensor fails with a timeout;
        defaults to ``[sensors] default_timeout``.
    :param progress_interval: Log progress (done/total, percent, rate, time left) whenever the
        counts change, at most once per this many seconds.
    :param outage_tolerance: Deferred wait only: seconds the service may stay unreachable (429,
        5xx, network) before the task fails, saying the batch may still be running at xAI and
        that clearing the task resumes the wait (default 900 s). ``None``: the deferred wait
        rides out any outage until ``timeout``. In poke mode every poke tries again and ``timeout`` bounds the wait.

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
    operator_extra_links = (XAIBatchLink(),)

    def __init__(
        self,
        *,
        batch_id: str,
        xai_conn_id: str = XAIBatchHook.default_conn_name,
        poke_interval: float | timedelta = 60,
        deferrable: bool | None = None,
        timeout: float | timedelta | None = None,
        progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
        outage_tolerance: float | None = DEFAULT_OUTAGE_TOLERANCE,
        **kwargs: Any,
    ) -> None:
        if timeout is not None:  # Airflow 3.0 refuses None; let its default stand instead
            kwargs["timeout"] = timeout
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.batch_id = batch_id
        self.xai_conn_id = xai_conn_id
        self.deferrable = default_deferrable() if deferrable is None else bool(deferrable)
        self.progress_interval = float(progress_interval)
        self.outage_tolerance = None if outage_tolerance is None else float(outage_tolerance)
        self._poller: BatchPoller | None = None

    def _look(self) -> PollStep:
        """Poll the batch once (twice when the key was rotated); raise what no later poll can fix.

        Transient errors only log a warning: the next poke tries again, and ``timeout`` bounds it.
        """
        if self._poller is None:  # one per wait, so progress lines span pokes
            self._poller = BatchPoller(
                self.batch_id,
                poll_interval=self.poke_interval,
                max_transient_errors=None,
                outage_tolerance=None,
                progress_interval=self.progress_interval,
            )
        poller = self._poller
        with task_hook(self.xai_conn_id) as hook:
            step = self._poll(hook, poller)
            if step.renew:
                hook.close()  # the next call reads the connection again
                step = self._poll(hook, poller)
            if step.error is not None:
                raise step.error
        if step.progress is not None:
            self.log.info("%s", step.progress)
        if step.warning is not None:
            self.log.warning("%s", step.warning)
        return step

    def _poll(self, hook: XAIBatchHook, poller: BatchPoller) -> PollStep:
        try:
            return poller.on_batch(hook.get_batch(self.batch_id), now=time.time())
        except Exception as exc:
            return poller.on_error(exc, now=time.time())

    def poke(self, context: Context) -> bool | PokeReturnValue:
        step = self._look()
        if step.event is None:
            return False
        return PokeReturnValue(is_done=True, xcom_value=event_outcome(step.event, self.batch_id))

    def execute(self, context: Context) -> Any:
        XAIBatchLink.persist(context, self.batch_id, self.xai_conn_id)  # before any wait or deferral
        if not self.deferrable:
            try:
                return super().execute(context)
            except AirflowSensorTimeout as timeout:
                if isinstance(timeout, XAIBatchWaitTimeout):
                    raise
                raise XAIBatchWaitTimeout(
                    f"Batch {self.batch_id} was still running when the wait timed out: {timeout}; it keeps running"
                ) from timeout
        end_time = time.time() + self.timeout
        # One look first: a batch that is already done needs no trip through the triggerer.
        step = self._look()
        if step.event is not None:
            return event_outcome(step.event, self.batch_id)
        self.defer(
            trigger=XAIBatchTrigger(
                batch_id=self.batch_id,
                xai_conn_id=self.xai_conn_id,
                poll_interval=self.poke_interval,
                end_time=end_time,
                progress_interval=self.progress_interval,
                outage_tolerance=self.outage_tolerance,
            ),
            method_name="execute_complete",
            timeout=deferral_timeout(self.timeout),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Turn the trigger's event into the task's outcome; ids come from the event itself."""
        return event_outcome(event, self.batch_id)
