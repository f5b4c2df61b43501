"""A whole batch in one task: :class:`XAIBatchOperator` creates, fills, waits and writes results."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from airflow.providers.common.compat.sdk import BaseOperator, Context

from airflow_provider_xai_batch.hooks.xai import XAIBatchHook
from airflow_provider_xai_batch.lineage import XAIBatchLineageMixin
from airflow_provider_xai_batch.links import XAIBatchLink
from airflow_provider_xai_batch.operators import _resubmit
from airflow_provider_xai_batch.operators._ingest import send_input, validate_task_input
from airflow_provider_xai_batch.operators._no_input import write_empty_results
from airflow_provider_xai_batch.operators._resume import create_or_reattach
from airflow_provider_xai_batch.operators.files import upload_validated
from airflow_provider_xai_batch.results.writer import export_results
from airflow_provider_xai_batch.sources import require_one_input
from airflow_provider_xai_batch.task_hook import task_hook
from airflow_provider_xai_batch.triggers.batch import XAIBatchTrigger
from airflow_provider_xai_batch.waiting import (
    DEFAULT_PROGRESS_INTERVAL,
    BatchPoller,
    default_deferrable,
    deferral_timeout,
    event_outcome,
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
    (JSONL file URIs, globs allowed). The whole input is validated, against the limits of the
    connection, before the batch is created: bad input leaves nothing behind on the account.
    An input without requests (an upstream task that found nothing to do) ends the task at once:
    no batch is created, ``output_path`` gets empty results with a manifest of ``total`` 0, and
    the task returns that manifest (``None`` without ``output_path``).

    Resumable across retries: a retry re-attaches to the batch its earlier try created (see
    :class:`~airflow_provider_xai_batch.operators.batch.XAICreateBatchOperator`), sends the input
    again (deterministic request ids make that a no-op for what is already there) and goes on
    waiting. With ``deferrable=True`` the wait runs in the triggerer and frees the worker slot.

    Returns (XCom) the results manifest when ``output_path`` is given, else the final batch as a
    JSON dict. Failures raise :mod:`~airflow_provider_xai_batch.exceptions` classes: bad input, a
    wrong key, a request the service refuses and a batch that xAI fails, that expires or that is
    cancelled fail the task at once, whatever its ``retries``; 429, 5xx and network trouble are
    retried as usual.

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
    :param timeout: Seconds (or ``timedelta``) to wait for the batch before failing the task with
        :class:`~airflow_provider_xai_batch.exceptions.XAIBatchWaitTimeout`, without a retry (as a
        sensor's timeout). The batch keeps running; clearing the task re-attaches to it and waits
        again. ``None`` waits as long as it takes.
    :param cancel_on_kill: Cancel the batch when the task is killed (while deferred: Airflow 3.3+).
    :param input_mode: ``"inline"`` adds the requests to an inline batch; ``"file"`` uploads the
        input as one JSONL file (see :class:`~airflow_provider_xai_batch.operators.files.XAIUploadFileOperator`)
        and creates a file batch from it.
    :param resubmit_failed: After the batch ends, send the requests that failed for a passing reason
        again in a follow-up batch, up to this many times (``0``: never). The results then show
        each request once, with its final outcome and ``attempts``; see :mod:`airflow_provider_xai_batch.resubmit`.
    :param resubmit_if: Decides from a failed request's error whether to resend it; default
        :func:`airflow_provider_xai_batch.resubmit.is_passing_error`.
    :param progress_interval: Log progress (done/total, percent, rate, time left) while waiting,
        whenever the counts change, at most once per this many seconds.
    :param xai_conn_id: The ``xai`` connection.

    >>> run_batch = XAIBatchOperator(  # doctest: +SKIP
    ...     task_id="nightly_eval",
    ...     name="nightly-eval-{{ (dag_run.logical_date or dag_run.run_after) | ds }}",
    ...     source="s3://prompts/{{ (dag_run.logical_date or dag_run.run_after) | ds }}/*.jsonl.gz",
    ...     source_conn_id="aws_default",
    ...     output_path="s3://results/nightly/{{ dag.dag_id }}/{{ run_id }}/",
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
    operator_extra_links = (XAIBatchLink(),)

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
        input_mode: str = "inline",
        resubmit_failed: int = 0,
        resubmit_if: Callable[[str], bool] | None = None,
        xai_conn_id: str = XAIBatchHook.default_conn_name,
        progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        require_one_input(requests, source, type(self).__name__)
        # -- file batches and follow-up rounds
        if input_mode not in ("inline", "file"):
            raise ValueError(
                f"{type(self).__name__}: input_mode must be 'inline' or 'file', not {input_mode!r}"
            )
        if isinstance(resubmit_failed, bool) or not isinstance(resubmit_failed, int) or resubmit_failed < 0:
            raise ValueError(f"{type(self).__name__}: resubmit_failed must be a whole number >= 0")
        if resubmit_failed and not wait_for_completion:
            raise ValueError(f"{type(self).__name__}: resubmit_failed needs wait_for_completion=True")
        self.input_mode = input_mode
        self.resubmit_failed = resubmit_failed
        self.resubmit_if = resubmit_if
        self.resume_kwargs: dict[str, Any] | None = None
        # --
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
        self.progress_interval = float(progress_interval)
        self.batch_id: str | None = None

    def execute(self, context: Context) -> Any:
        with task_hook(self.xai_conn_id) as hook:
            batch_id = self._submit(hook, context)
            if batch_id is None:
                return self._no_input()
            if not self.wait_for_completion:
                return hook.get_batch(batch_id).to_xcom()
            end_time = time.time() + self.timeout if self.timeout is not None else None
            return self._finish(hook, self._wait(hook, batch_id, end_time), context)

    def _submit(self, hook: XAIBatchHook, context: Context) -> str | None:
        """Check the whole input, then create (or, on a retry, re-attach to) the batch and fill it.

        Everything is checked before the batch exists, so bad input leaves nothing on the account.
        ``None`` when the input holds no requests: then no batch is created at all.
        """
        validated = validate_task_input(hook, self, context)
        if validated.is_empty:
            return None
        if self.input_mode == "file":  # upload (or re-use this task's upload), then a sealed file batch
            file_id = upload_validated(hook, context, validated.resolved, log=self.log)
            batch = create_or_reattach(hook, self.name, context, input_file_id=file_id, log=self.log)
        else:
            batch = create_or_reattach(hook, self.name, context, log=self.log)
            send_input(hook, batch.batch_id, validated, held_before=batch.state.num_requests, log=self.log)
        self.batch_id = batch.batch_id
        XAIBatchLink.persist(context, batch.batch_id, self.xai_conn_id)  # before the wait defers
        return batch.batch_id

    def _no_input(self) -> dict[str, Any] | None:
        """End at once when the input holds no requests: no batch, empty results if asked."""
        if self.output_path is None:
            self.log.info("The input holds no requests: no batch created, nothing to wait for")
            return None
        manifest = write_empty_results(self.output_path, self.output_conn_id, self.name)
        self.log.info(
            "The input holds no requests: no batch created; empty results written to %s", self.output_path
        )
        return manifest

    def _wait(self, hook: XAIBatchHook, batch_id: str, end_time: float | None) -> dict[str, Any]:
        """Poll until the wait is over, making the same decisions as the trigger; return the completed batch.

        When deferrable, the first poll still happens here (a batch that is already done needs no
        trip through the triggerer), then the wait moves to the triggerer.
        """
        poller = BatchPoller(
            batch_id,
            poll_interval=self.poll_interval,
            end_time=end_time,
            progress_interval=self.progress_interval,
        )
        while True:
            try:
                batch = hook.get_batch(batch_id)
            except Exception as exc:
                step = poller.on_error(exc, now=time.time())
            else:
                step = poller.on_batch(batch, now=time.time())
            if step.progress is not None:
                self.log.info("%s", step.progress)
            if step.warning is not None:
                self.log.warning("%s", step.warning)
            if step.event is not None:
                if step.error is not None:
                    raise step.error
                return event_outcome(step.event, batch_id)
            if step.renew:
                hook.close()  # the next call reads the connection again
                continue
            if self.deferrable:
                self._defer(batch_id, end_time)
            time.sleep(step.delay)

    def _defer(self, batch_id: str, end_time: float | None) -> None:
        self.defer(
            trigger=XAIBatchTrigger(
                batch_id=batch_id,
                xai_conn_id=self.xai_conn_id,
                poll_interval=self.poll_interval,
                end_time=end_time,
                cancel_on_kill=self.cancel_on_kill,
                progress_interval=self.progress_interval,
            ),
            method_name="execute_complete",
            kwargs=self.resume_kwargs,  # the rounds so far, when resubmitting
            timeout=deferral_timeout(self.timeout),
        )

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, rounds: list[str] | None = None
    ) -> Any:
        """Resume after the trigger: check its event, then write the results if asked."""
        batch = event_outcome(event, None)
        self.batch_id = str(batch["batch_id"])
        with task_hook(self.xai_conn_id) as hook:
            return self._finish(hook, batch, context, rounds)

    def _finish(
        self,
        hook: XAIBatchHook,
        batch: dict[str, Any],
        context: Context | None = None,
        rounds: list[str] | None = None,
    ) -> Any:
        if self.resubmit_failed and context is not None:
            return _resubmit.finish_rounds(self, hook, context, batch, rounds)
        if self.output_path is None:
            return batch
        return export_results(
            hook.get_conn(),
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
            with task_hook(self.xai_conn_id) as hook:
                if hook.get_batch(self.batch_id).is_terminal:
                    return
                batch = hook.cancel_batch(self.batch_id)
            self.log.info("Cancelled batch %s on kill (%s)", self.batch_id, batch.status.value)
        except Exception as exc:  # the task is being killed anyway; say why the batch may still run
            self.log.warning("Could not cancel batch %s on kill: %s", self.batch_id, exc)
