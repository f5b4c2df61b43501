"""The add step of the operators: validate the whole input first, then send it.

Validation reads everything once before anything is sent (``XAIBatchOperator`` does it before
the batch even exists), checking each request against the limits the connection really sets.
Sending streams the same input a second time and ends with one summary line.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_xai_batch.client.errors import XAIInputError
from airflow_provider_xai_batch.sources import (
    InputSummary,
    ResolvedInput,
    iter_located,
    resolve_input,
    validate,
    xcom_source_label,
)
from airflow_provider_xai_batch.waiting.progress import per_second

if TYPE_CHECKING:
    from airflow_provider_xai_batch.hooks.xai import XAIBatchHook
    from airflow_provider_xai_batch.logs import LogLike


@dataclasses.dataclass(frozen=True)
class ValidatedInput:
    """An input read and checked completely; ``resolved`` pins the very lists or files to send."""

    resolved: ResolvedInput
    summary: InputSummary

    @property
    def is_empty(self) -> bool:
        return self.summary.unique == 0


@dataclasses.dataclass(frozen=True)
class AddReport:
    """What one add step did, and the line that tells the task log.

    >>> AddReport("batch_1", sent=1200, calls=3, seconds=2.4, already_present=300).line()
    'batch batch_1: sent 1,200 requests in 3 add calls in 2.4s (500 requests/s): 900 new, 300 already present'
    >>> AddReport("batch_1", sent=10, calls=1, seconds=0.5).line()
    'batch batch_1: sent 10 requests in 1 add call in 0.5s (20 requests/s)'
    """

    batch_id: str
    sent: int
    calls: int
    seconds: float
    already_present: int | None = None

    @property
    def rate(self) -> float:
        return per_second(self.sent, self.seconds)

    def line(self) -> str:
        calls = f"{self.calls} add call{'' if self.calls == 1 else 's'}"
        text = (
            f"batch {self.batch_id}: sent {self.sent:,} requests in {calls} in {self.seconds:.1f}s "
            f"({self.rate:,.0f} requests/s)"
        )
        if self.already_present is not None:
            text += f": {self.sent - self.already_present:,} new, {self.already_present:,} already present"
        return text


class InputTask(Protocol):
    """An operator that takes its input as ``requests`` or ``source`` (read with ``source_conn_id``)."""

    requests: Any
    source: Any
    source_conn_id: str | None

    @property
    def log(self) -> LogLike: ...


def validate_task_input(
    hook: XAIBatchHook, task: InputTask, context: Mapping[str, Any] | None
) -> ValidatedInput:
    """``validate_input`` for an operator's own input, labelled for its task instance.

    >>> validated = validate_task_input(hook, self, context)  # doctest: +SKIP
    """
    return validate_input(
        hook,
        requests=task.requests,
        source=task.source,
        source_conn_id=task.source_conn_id,
        source_label=xcom_source_label(context),
        log=task.log,
    )


def validate_input(
    hook: XAIBatchHook,
    *,
    requests: Any = None,
    source: Any = None,
    source_conn_id: str | None = None,
    source_label: str,
    log: LogLike | None,
) -> ValidatedInput:
    """Read the whole input once and check every request; raise ``XAIInputError`` at the first problem.

    The one validation path of every operator, inline or file batch. Sizes are checked against
    the connection's own limits (its extra may lower them) by the one rule
    :attr:`~airflow_provider_xai_batch.client.policy.ClientLimits.largest_request_bytes`, so a
    request that no add call could carry fails here, before anything is sent.
    """
    resolved = resolve_input(
        requests=requests, source=source, source_conn_id=source_conn_id, source_label=source_label
    )
    summary = validate(resolved, max_request_bytes=hook.limits.largest_request_bytes)
    if log is None:
        return ValidatedInput(resolved, summary)
    for name, count in summary.per_source.items():
        log.info("%s: %d requests", name, count)
    log.info(
        "validated %d requests (%d distinct) from %d source(s)",
        summary.total,
        summary.unique,
        len(summary.per_source),
    )
    return ValidatedInput(resolved, summary)


def send_input(
    hook: XAIBatchHook,
    batch_id: str,
    validated: ValidatedInput,
    *,
    held_before: int | None = None,
    log: LogLike,
) -> AddReport:
    """Stream a validated input into a batch and log one summary line; return the report.

    ``held_before`` (the batch's request count before sending, when nobody else adds to it) lets
    the summary say how many requests were already there, as after a retry.
    """
    if validated.is_empty:
        log.warning("the input holds no requests: nothing to add to batch %s", batch_id)
        return AddReport(batch_id, sent=0, calls=0, seconds=0.0)
    calls = 0

    def count_call(_: int) -> None:
        nonlocal calls
        calls += 1

    started = time.monotonic()
    sent = hook.add_requests(
        batch_id, iter_located(validated.resolved), source=validated.resolved.label, on_call=count_call
    )
    seconds = time.monotonic() - started
    if sent != validated.summary.unique:
        raise XAIInputError(
            f"the input changed while it was being sent: validated {validated.summary.unique} distinct "
            f"requests, sent {sent}; run the task again to send the current input",
            source=", ".join(validated.summary.per_source),
        )
    already_present = None
    if held_before is not None:
        held_after = hook.get_batch(batch_id).state.num_requests
        already_present = min(sent, max(0, sent - (held_after - held_before)))
    report = AddReport(batch_id, sent=sent, calls=calls, seconds=seconds, already_present=already_present)
    log.info("%s", report.line())
    return report
