"""A whole batch in one task: :class:`XAIBatchOperator` creates, fills, waits and writes results."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from airflow.exceptions import AirflowProviderDeprecationWarning
from airflow.providers.common.compat.sdk import BaseOperator, Context

from airflow_provider_xai_batch.exceptions import XAIBatchTaskError
from airflow_provider_xai_batch.hooks.xai import XAIBatchHook
from airflow_provider_xai_batch.lineage import XAIBatchLineageMixin
from airflow_provider_xai_batch.links import XAIBatchLink
from airflow_provider_xai_batch.operators._export import task_input_metadata
from airflow_provider_xai_batch.operators._ingest import send_input, validate_task_input
from airflow_provider_xai_batch.operators._no_input import write_empty_results
from airflow_provider_xai_batch.operators._resubmit import resend, round_outcomes
from airflow_provider_xai_batch.operators._resume import create_or_reattach
from airflow_provider_xai_batch.operators.files import upload_validated
from airflow_provider_xai_batch.resubmit import ErrorPolicy, ResubmitPolicy, RoundsPlan
from airflow_provider_xai_batch.results.export import export_results
from airflow_provider_xai_batch.results.manifest import data_file_names
from airflow_provider_xai_batch.results.media import check_media_mode, media_export_kwargs
from airflow_provider_xai_batch.results.rounds import export_rounds
from airflow_provider_xai_batch.results.table import require_output_format
from airflow_provider_xai_batch.sources import require_one_input, resolve_input, xcom_source_label
from airflow_provider_xai_batch.task_hook import task_hook
from airflow_provider_xai_batch.triggers.batch import XAIBatchTrigger
from airflow_provider_xai_batch.waiting import (
    DEFAULT_OUTAGE_TOLERANCE,
    DEFAULT_PROGRESS_INTERVAL,
    BatchPoller,
    default_deferrable,
    deferral_timeout,
    event_outcome,
)

__all__ = ["ResubmitPolicy", "XAIBatchOperator"]

# The wall clock and the pause of the synchronous wait: tests move them by hand instead of sleeping.
wall_clock: Callable[[], float] = time.time
pause: Callable[[float], object] = time.sleep

# The keyword that carries the rounds so far (their batch ids) through a deferral, and the
# deadline of the whole task, so that a resumed task goes on where it was.
ROUNDS_KWARG = "rounds"
END_TIME_KWARG = "end_time"
NO_RESUBMIT = ResubmitPolicy(rounds=0)


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
    :param timeout: Seconds (or ``timedelta``) the whole task may take, from its start, including
        every follow-up round of ``resubmit``; once spent, the task fails with
        :class:`~airflow_provider_xai_batch.exceptions.XAIBatchWaitTimeout`, without a retry (as a
        sensor's timeout). The batch keeps running; clearing the task re-attaches to it and waits
        again. ``None`` waits as long as it takes.
    :param cancel_on_kill: Cancel the batch when the task is killed (while deferred: Airflow 3.3+).
    :param input_mode: ``"inline"`` adds the requests to an inline batch; ``"file"`` uploads the
        input as one JSONL file (see :class:`~airflow_provider_xai_batch.operators.files.XAIUploadFileOperator`)
        and creates a file batch from it.
    :param resubmit: A :class:`~airflow_provider_xai_batch.resubmit.ResubmitPolicy`: after the batch
        ends, send the requests that failed for a passing reason (``retry_if``, default
        :func:`~airflow_provider_xai_batch.resubmit.is_passing_error`) again in a follow-up batch, up
        to ``rounds`` times. The results then show each request once, with its final outcome and
        ``attempts``; see :mod:`airflow_provider_xai_batch.resubmit`. ``None``: never.
    :param resubmit_failed: Deprecated: ``resubmit=ResubmitPolicy(rounds=...)``.
    :param resubmit_if: Deprecated: ``resubmit=ResubmitPolicy(retry_if=...)``.
    :param output_format: ``"jsonl"`` (default) or ``"parquet"``: the data files written under
        ``output_path`` (``succeeded.parquet`` and ``failed.parquet`` need the ``[parquet]`` extra).
        An input item's top-level ``"metadata"`` comes back on its result row in either format.
    :param progress_interval: Log progress (done/total, percent, rate, time left) while waiting,
        whenever the counts change, at most once per this many seconds.
    :param outage_tolerance: Seconds the service may stay unreachable (429, 5xx, network) during
        the wait before the task fails, saying the batch may still be running at xAI and that
        clearing the task resumes the wait (default 900 s), whether the wait runs in the worker or
        deferred in the triggerer. ``None``: the wait rides out any outage until ``timeout``.
    :param xai_conn_id: The ``xai`` connection.
    :param media: With ``output_path``: ``"download"`` (default) stores images and videos under
        ``<output_path>/media/``; ``"urls"`` keeps xAI's expiring URLs (see ``docs/results.md``).
    :param allow_media_hosts: Media hosts to allow beyond xAI's own.
    :param allow_media_failures: Keep the export when some media cannot be stored (they are named
        in the manifest) instead of failing the task.

    >>> run_batch = XAIBatchOperator(  # doctest: +SKIP
    ...     task_id="nightly_eval",
    ...     name="nightly-eval-{{ (dag_run.logical_date or dag_run.run_after) | ds }}",
    ...     source="s3://prompts/{{ (dag_run.logical_date or dag_run.run_after) | ds }}/*.jsonl.gz",
    ...     source_conn_id="aws_default",
    ...     output_path="s3://results/nightly/{{ dag.dag_id }}/{{ run_id }}/",
    ...     output_conn_id="aws_default",
    ...     deferrable=True,
    ...     timeout=24 * 3600,
    ...     resubmit=ResubmitPolicy(rounds=2),
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
        resubmit: ResubmitPolicy | None = None,
        resubmit_failed: int | None = None,
        resubmit_if: ErrorPolicy | None = None,
        xai_conn_id: str = XAIBatchHook.default_conn_name,
        progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
        outage_tolerance: float | None = DEFAULT_OUTAGE_TOLERANCE,
        media: str = "download",
        allow_media_hosts: Sequence[str] | None = None,
        allow_media_failures: bool = False,
        output_format: str = "jsonl",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        data_file_names(output_format)  # an unknown format fails when the DAG is parsed
        self.output_format = output_format
        require_one_input(requests, source, type(self).__name__)
        # -- file batches and follow-up rounds
        if input_mode not in ("inline", "file"):
            raise ValueError(
                f"{type(self).__name__}: input_mode must be 'inline' or 'file', not {input_mode!r}"
            )
        self.resubmit = _resubmit_policy(type(self).__name__, resubmit, resubmit_failed, resubmit_if)
        if self.resubmit.rounds and not wait_for_completion:
            raise ValueError(f"{type(self).__name__}: resubmit needs wait_for_completion=True")
        self.input_mode = input_mode
        if output_path is not None and not wait_for_completion:
            raise ValueError(f"{type(self).__name__}: output_path needs wait_for_completion=True")
        if poll_interval <= 0:
            raise ValueError(f"{type(self).__name__}: poll_interval must be positive")
        if outage_tolerance is not None and outage_tolerance < 0:
            raise ValueError(f"{type(self).__name__}: outage_tolerance must not be negative")
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
        self.outage_tolerance = None if outage_tolerance is None else float(outage_tolerance)
        self.batch_id: str | None = None
        # Images and videos of the results (see XAIBatchResultsOperator).
        self.media = check_media_mode(media)
        self.allow_media_hosts = tuple(allow_media_hosts or ())
        self.allow_media_failures = allow_media_failures

    def execute(self, context: Context) -> Any:
        # The deadline of the whole task, follow-up rounds included; it travels with every deferral.
        end_time = wall_clock() + self.timeout if self.timeout is not None else None
        if self.output_path is not None:  # a missing extra fails before a batch exists
            require_output_format(self.output_format)
        with task_hook(self.xai_conn_id) as hook:
            batch_id = self._submit(hook, context)
            if batch_id is None:
                return self._no_input()
            if not self.wait_for_completion:
                return hook.get_batch(batch_id).to_xcom()
            rounds = [batch_id]
            return self._finish(hook, self._wait(hook, rounds, end_time), context, rounds, end_time)

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
        manifest = write_empty_results(
            self.output_path, self.output_conn_id, self.name, log=self.log, output_format=self.output_format
        )
        self.log.info(
            "The input holds no requests: no batch created; empty results written to %s", self.output_path
        )
        return manifest

    def _wait(self, hook: XAIBatchHook, rounds: list[str], end_time: float | None) -> dict[str, Any]:
        """Poll the latest round until the wait is over, as the trigger decides; return the completed batch.

        When deferrable, the first poll still happens here (a batch that is already done needs no
        trip through the triggerer), then the wait moves to the triggerer, carrying the rounds so
        far and the task's deadline.
        """
        batch_id = rounds[-1]
        poller = BatchPoller(
            batch_id,
            poll_interval=self.poll_interval,
            end_time=end_time,
            progress_interval=self.progress_interval,
            outage_tolerance=self.outage_tolerance,
        )
        while True:
            try:
                answer: Any = hook.get_batch(batch_id)
            except Exception as exc:
                answer = exc
            step = poller.step(answer, now=wall_clock(), log=self.log)
            if step.event is not None:
                # The same task error, with the same message, as the deferred wait's event ends in
                # (an outage says the batch may still run and clearing the task resumes the wait);
                # the poll's own error stays attached as the cause.
                try:
                    return event_outcome(step.event, batch_id)
                except XAIBatchTaskError as failure:
                    raise failure from step.error
            if step.renew:
                hook.close()  # the next call reads the connection again
                continue
            if self.deferrable:
                self._defer(rounds, end_time)
            pause(step.delay)

    def _defer(self, rounds: list[str], end_time: float | None) -> None:
        remaining = max(0.0, end_time - wall_clock()) if end_time is not None else None
        self.defer(
            trigger=XAIBatchTrigger(
                batch_id=rounds[-1],
                xai_conn_id=self.xai_conn_id,
                poll_interval=self.poll_interval,
                end_time=end_time,
                cancel_on_kill=self.cancel_on_kill,
                progress_interval=self.progress_interval,
                outage_tolerance=self.outage_tolerance,
            ),
            method_name="execute_complete",
            kwargs={ROUNDS_KWARG: list(rounds), END_TIME_KWARG: end_time},
            timeout=deferral_timeout(remaining),
        )

    def execute_complete(
        self,
        context: Context,
        event: dict[str, Any] | None = None,
        rounds: list[str] | None = None,
        end_time: float | None = None,
    ) -> Any:
        """Resume after the trigger: check its event, then go on with the rounds and write the results if asked."""
        batch = event_outcome(event, None)
        self.batch_id = str(batch["batch_id"])
        with task_hook(self.xai_conn_id) as hook:
            return self._finish(hook, batch, context, list(rounds or [self.batch_id]), end_time)

    def _finish(
        self,
        hook: XAIBatchHook,
        batch: dict[str, Any],
        context: Context,
        rounds: list[str],
        end_time: float | None,
    ) -> Any:
        """After the latest round completed: make the follow-up rounds due, then export or return."""
        if self.resubmit.rounds:
            rounds = self._run_rounds(hook, context, rounds, end_time)
            if self.output_path is None:
                first = hook.get_batch(rounds[0]).to_xcom()
                first[ROUNDS_KWARG] = rounds
                return first
        elif self.output_path is None:
            return batch
        assert self.output_path is not None
        with task_input_metadata(self, context) as metadata:
            options: dict[str, Any] = {
                "output_conn_id": self.output_conn_id,
                "log": self.log,
                "output_format": self.output_format,
                "metadata": metadata,
                "allow_media_failures": self.allow_media_failures,
                **media_export_kwargs(
                    hook, self.xai_conn_id, media=self.media, allow_media_hosts=self.allow_media_hosts
                ),
            }
            if self.resubmit.rounds:  # every round, merged into one set of files
                return export_rounds(hook.get_conn(), rounds, self.output_path, **options)
            return export_results(hook.get_conn(), str(batch["batch_id"]), self.output_path, **options)

    def _run_rounds(
        self, hook: XAIBatchHook, context: Context, rounds: list[str], end_time: float | None
    ) -> list[str]:
        """Make and wait for the follow-up rounds :class:`RoundsPlan` asks for; return every round's batch id.

        Each round re-attaches on a retry (its own name and state key). Waiting may defer, in
        which case ``execute_complete`` comes back here with the rounds so far.
        """
        plan = RoundsPlan(self.name, self.resubmit, rounds)
        resolved = None
        while plan.more_allowed:
            step = plan.next_round(round_outcomes(hook, plan.last))
            if step is None:
                self.log.info(
                    "round %d leaves nothing to resend (%d failed for good)",
                    len(plan.rounds) - 1,
                    plan.failed_for_good,
                )
                break
            batch = create_or_reattach(hook, step.name, context, log=self.log, state_key=step.state_key)
            if resolved is None:
                resolved = resolve_input(
                    requests=self.requests,
                    source=self.source,
                    source_conn_id=self.source_conn_id,
                    source_label=xcom_source_label(context),
                )
            sent = resend(hook, resolved, batch.batch_id, step.resend)
            self.log.info(
                "round %d: resending %d requests that failed for a passing reason in batch %s "
                "(%d failed for good)",
                step.number,
                sent,
                batch.batch_id,
                step.failed_for_good,
            )
            plan.started(batch.batch_id)
            self.batch_id = batch.batch_id
            self._wait(hook, plan.rounds, end_time)
        return plan.rounds

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


def _resubmit_policy(
    owner: str, policy: ResubmitPolicy | None, rounds: int | None, retry_if: ErrorPolicy | None
) -> ResubmitPolicy:
    """The one resubmission value, also from the deprecated ``resubmit_failed`` / ``resubmit_if``."""
    if rounds is None and retry_if is None:
        return policy if policy is not None else NO_RESUBMIT
    if policy is not None:
        raise ValueError(
            f"{owner}: give resubmit=ResubmitPolicy(...) alone, not with resubmit_failed/resubmit_if"
        )
    warnings.warn(
        f"{owner}: resubmit_failed= and resubmit_if= are deprecated; "
        "pass resubmit=ResubmitPolicy(rounds=..., retry_if=...)",
        AirflowProviderDeprecationWarning,
        stacklevel=4,
    )
    try:
        if retry_if is None:
            return ResubmitPolicy(rounds=0 if rounds is None else rounds)
        return ResubmitPolicy(rounds=0 if rounds is None else rounds, retry_if=retry_if)
    except ValueError as error:
        raise ValueError(f"{owner}: resubmit_failed must be a whole number >= 0") from error
