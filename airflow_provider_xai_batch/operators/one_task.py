"""A whole batch in one task: :class:`XAIBatchOperator` creates, fills, waits and writes results."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.providers.common.compat.sdk import AirflowException, BaseOperator, Context

from airflow_provider_xai_batch.client import Batch
from airflow_provider_xai_batch.hooks.xai import XAIBatchHook
from airflow_provider_xai_batch.lineage import XAIBatchLineageMixin
from airflow_provider_xai_batch.operators._resume import create_or_reattach
from airflow_provider_xai_batch.results.writer import export_results
from airflow_provider_xai_batch.sensors.batch import (
    DEFERRAL_GRACE_SECONDS,
    default_deferrable,
    event_outcome,
    outcome_of,
)
from airflow_provider_xai_batch.sources import add_from_input, require_one_input, xcom_source_label
from airflow_provider_xai_batch.triggers.batch import (
    DEFAULT_MAX_TRANSIENT_ERRORS,
    TRANSIENT_ERRORS,
    XAIBatchTrigger,
    describe_batch,
    transient_backoff,
)


def _seconds(value: float | timedelta | None) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        raise ValueError("timeout must not be negative")
    return seconds


class XAIBatchOperator(XAIBatchLineageMixin, BaseOperator):
    """Create a batch, add requests, wait for it and write its results, all in one task.

    Give exactly one of ``requests`` (a list, typically an upstream task's XCom) or ``source``
    (JSONL file URIs, globs allowed). The whole input is validated before anything is sent.

    Resumable across retries: a retry re-attaches to the batch its earlier try created (see
    :class:`~airflow_provider_xai_batch.operators.batch.XAICreateBatchOperator`), sends the input
    again (deterministic request ids make that a no-op for what is already there) and goes on
    waiting. With ``deferrable=True`` the wait runs in the triggerer and frees the worker slot.

    Returns (XCom) the results manifest when ``output_path`` is given, else the final batch as a
    JSON dict. A batch that xAI fails, that expires or that is cancelled fails the task.

    :param name: Batch name (templated); a per-task-instance suffix is appended.
    :param requests: Request objects (templated; an ``XComArg`` works).
    :param source: URI or list of URIs of JSONL files, globs allowed (templated).
    :param source_conn_id: Connection to read ``source`` with (templated).
    :param output_path: Folder URI for ``succeeded.jsonl``, ``failed.jsonl``, ``manifest.json``
        (templated); ``None`` writes nothing.
    :param output_conn_id: Connection to write ``output_path`` with (templated).
    :param wait_for_completion: Wait for the batch; ``False`` returns right after adding.
    :param deferrable: Wait in the triggerer; defaults to ``[operators] default_deferrable``.
    :param poll_interval: Seconds between status checks.
    :param timeout: Seconds (or ``timedelta``) to wait before failing the task; the batch keeps
        running, and a retry re-attaches to it. ``None`` waits as long as it takes.
    :param cancel_on_kill: Cancel the batch when the task is killed (while deferred: Airflow 3.3+).
    :param xai_conn_id: The ``xai`` connection.

    >>> run_batch = XAIBatchOperator(  # doctest: +SKIP
    ...     task_id="nightly_eval",
    ...     name="nightly-eval-{{ ds }}",
    ...     source="s3://prompts/{{ ds }}/*.jsonl.gz",
    ...     source_conn_id="aws_default",
    ...     output_path="s3://results/nightly/{{ ds }}",
    ...     output_conn_id="aws_default",
    ...     deferrable=True,
    ...     timeout=24 * 3600,
    ... )
    """

    template_fields: Sequence[str] = (
        "name",
        "requests",
        "source",
        "source_conn_id",
        "output_path",
        "output_conn_id",
    )
    ui_color = "#d9e3f0"

    def __init__(
        self,
        *,
        name: str,
        requests: Any = None,
        source: Any = None,
        source_conn_id: str | None = None,
        output_path: Any = None,
        output_conn_id: str | None = None,
        wait_for_completion: bool = True,
        deferrable: bool | None = None,
        poll_interval: float = 60,
        timeout: float | timedelta | None = None,
        cancel_on_kill: bool = True,
        xai_conn_id: str = XAIBatchHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        require_one_input(requests, source, type(self).__name__)
        if output_path is not None and not wait_for_completion:
            raise ValueError(f"{type(self).__name__}: output_path needs wait_for_completion=True")
        if poll_interval <= 0:
            raise ValueError(f"{type(self).__name__}: poll_interval must be positive")
        self.name = name
        self.requests = requests
        self.source = source
        self.source_conn_id = source_conn_id
        self.output_path = output_path
        self.output_conn_id = output_conn_id
        self.wait_for_completion = wait_for_completion
        self.deferrable = default_deferrable() if deferrable is None else bool(deferrable)
        self.poll_interval = float(poll_interval)
        self.timeout = _seconds(timeout)
        self.cancel_on_kill = cancel_on_kill
        self.xai_conn_id = xai_conn_id
        self.batch_id: str | None = None
        self._hook: XAIBatchHook | None = None

    @property
    def hook(self) -> XAIBatchHook:
        if self._hook is None:
            self._hook = XAIBatchHook(xai_conn_id=self.xai_conn_id)
        return self._hook

    def _close_hook(self) -> None:
        # The hook caches its client only once used; close its connections if so.
        hook, self._hook = self._hook, None
        client = hook.__dict__.get("client") if hook is not None else None
        if client is not None:
            client.close()

    def execute(self, context: Context) -> Any:
        try:
            batch = self._submit(context)
            if not self.wait_for_completion:
                return batch.to_xcom()
            end_time = time.time() + self.timeout if self.timeout is not None else None
            if not batch.is_terminal:
                if self.deferrable:
                    self._defer(batch.batch_id, end_time)
                batch = self._wait_here(batch.batch_id, end_time)
            self.log.info("%s", describe_batch(batch))
            return self._finish(outcome_of(batch.to_xcom(), batch.status.value))
        finally:
            self._close_hook()

    def _submit(self, context: Context) -> Batch:
        """Create (or, on a retry, re-attach to) the batch and send the whole input to it."""
        batch = create_or_reattach(self.hook, self.name, context, log=self.log)
        self.batch_id = batch.batch_id
        added = add_from_input(
            self.hook,
            batch.batch_id,
            requests=self.requests,
            source=self.source,
            source_conn_id=self.source_conn_id,
            source_label=xcom_source_label(context),
            log=self.log,
        )
        self.log.info("batch %s holds the input (%d distinct requests sent)", batch.batch_id, added)
        return self.hook.get_batch(batch.batch_id)

    def _defer(self, batch_id: str, end_time: float | None) -> None:
        self.defer(
            trigger=XAIBatchTrigger(
                batch_id=batch_id,
                xai_conn_id=self.xai_conn_id,
                poll_interval=self.poll_interval,
                end_time=end_time,
                cancel_on_kill=self.cancel_on_kill,
            ),
            method_name="execute_complete",
            timeout=(
                timedelta(seconds=self.timeout + DEFERRAL_GRACE_SECONDS) if self.timeout is not None else None
            ),
        )

    def _wait_here(self, batch_id: str, end_time: float | None) -> Batch:
        """Poll from the worker until the batch is terminal; transient errors back off as in the trigger."""
        failures = 0
        while True:
            try:
                batch = self.hook.get_batch(batch_id)
            except TRANSIENT_ERRORS as exc:
                failures += 1
                if failures > DEFAULT_MAX_TRANSIENT_ERRORS:
                    raise AirflowException(
                        f"polling batch {batch_id} failed {failures} times in a row: {exc}"
                    ) from exc
                delay = transient_backoff(self.poll_interval, failures)
                self.log.warning("Polling batch %s failed (%s); next try in %.1fs", batch_id, exc, delay)
            else:
                failures = 0
                if batch.is_terminal:
                    return batch
                self.log.info("%s", describe_batch(batch))
                delay = self.poll_interval
            if end_time is not None:
                remaining = end_time - time.time()
                if remaining <= 0:
                    raise AirflowException(
                        f"Batch {batch_id} did not finish within {self.timeout:.0f}s; it keeps running "
                        "and a retry of this task re-attaches to it"
                    )
                delay = min(delay, remaining)
            time.sleep(delay)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger: check its event, then write the results if asked."""
        batch = event_outcome(event, None)
        self.batch_id = str(batch["batch_id"])
        try:
            return self._finish(batch)
        finally:
            self._close_hook()

    def _finish(self, batch: dict[str, Any]) -> Any:
        if self.output_path is None:
            return batch
        return export_results(
            self.hook.get_conn(),
            str(batch["batch_id"]),
            self.output_path,
            output_conn_id=self.output_conn_id,
            log=self.log,
        )

    def on_kill(self) -> None:
        """Cancel the batch (when ``cancel_on_kill``) if it is still running."""
        if not self.cancel_on_kill or self.batch_id is None:
            return
        try:
            hook = XAIBatchHook(xai_conn_id=self.xai_conn_id)
            if hook.get_batch(self.batch_id).is_terminal:
                return
            batch = hook.cancel_batch(self.batch_id)
            self.log.info("Cancelled batch %s on kill (%s)", self.batch_id, batch.status.value)
        except Exception as exc:  # the task is being killed anyway; say why the batch may still run
            self.log.warning("Could not cancel batch %s on kill: %s", self.batch_id, exc)
