"""Follow-up rounds of :class:`~airflow_provider_xai_batch.operators.one_task.XAIBatchOperator`.

When round ``k``'s batch has completed, the requests that failed for a passing reason
(:func:`~airflow_provider_xai_batch.resubmit.is_passing_error`, or the operator's ``resubmit_if``)
are read again from the input, picked out by their deterministic ids, and sent as round ``k + 1``:
a new inline batch with its own deterministic name and task-state key. Waiting for it goes the
operator's way (polling, or deferring with the rounds so far passed to ``execute_complete``).

A retry of the task runs the same steps: round 0 re-attaches, its results are the same, so the
same requests are picked, round 1 re-attaches (adding is a no-op), and so on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from airflow_provider_xai_batch.client.errors import XAIInputError
from airflow_provider_xai_batch.client.inputs import NativeRequest
from airflow_provider_xai_batch.operators._export import task_input_metadata
from airflow_provider_xai_batch.operators._resume import create_or_reattach
from airflow_provider_xai_batch.resubmit import (
    ResendPlan,
    is_passing_error,
    plan_resend,
    round_name,
    round_state_key,
)
from airflow_provider_xai_batch.results.rounds import export_rounds
from airflow_provider_xai_batch.sources import iter_native, resolve_input, xcom_source_label

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_xai_batch.hooks.xai import XAIBatchHook
    from airflow_provider_xai_batch.operators.one_task import XAIBatchOperator

ROUNDS_KWARG = "rounds"


def _outcomes(hook: XAIBatchHook, batch_id: str) -> Iterator[tuple[str, str | None]]:
    for result in hook.iter_results(batch_id):
        yield result.batch_request_id, (None if result.succeeded else (result.error or ""))


def _picked(requests: Iterator[NativeRequest], wanted: set[str], found: set[str]) -> Iterator[NativeRequest]:
    for request in requests:
        request_id = request["batch_request_id"]
        if request_id in wanted:
            found.add(request_id)
            yield request


def _resend(
    op: XAIBatchOperator, hook: XAIBatchHook, context: Context, batch_id: str, wanted: set[str]
) -> int:
    resolved = resolve_input(
        requests=op.requests,
        source=op.source,
        source_conn_id=op.source_conn_id,
        source_label=xcom_source_label(context),
    )
    found: set[str] = set()
    sent = hook.add_requests(batch_id, _picked(iter_native(resolved), wanted, found), source=resolved.label)
    missing = wanted - found
    if missing:
        raise XAIInputError(
            f"{len(missing)} failed requests are no longer in the input (e.g. {sorted(missing)[0]!r}); "
            "the input changed while the task ran",
            source=", ".join(resolved.sources),
        )
    return sent


def plan_next_round(op: XAIBatchOperator, hook: XAIBatchHook, batch_id: str) -> ResendPlan:
    """What round ``batch_id`` leaves to resend, by the operator's policy."""
    policy = op.resubmit_if if op.resubmit_if is not None else is_passing_error
    return plan_resend(_outcomes(hook, batch_id), policy)


def run_rounds(op: XAIBatchOperator, hook: XAIBatchHook, context: Context, rounds: list[str]) -> list[str]:
    """Make and wait for follow-up rounds after the last of ``rounds`` completed; return every round's batch id.

    Stops when nothing is left to resend or after ``op.resubmit_failed`` follow-ups. May defer (the
    operator's own wait), in which case ``execute_complete`` comes back here with the rounds so far.
    """
    while len(rounds) <= op.resubmit_failed:
        plan = plan_next_round(op, hook, rounds[-1])
        number = len(rounds)
        if plan.empty:
            op.log.info(
                "round %d leaves nothing to resend (%d failed for good)", number - 1, plan.failed_for_good
            )
            break
        batch = create_or_reattach(
            hook, round_name(op.name, number), context, log=op.log, state_key=round_state_key(number)
        )
        sent = _resend(op, hook, context, batch.batch_id, plan.resend)
        op.log.info(
            "round %d: resending %d requests that failed for a passing reason in batch %s (%d failed for good)",
            number,
            sent,
            batch.batch_id,
            plan.failed_for_good,
        )
        rounds.append(batch.batch_id)
        op.batch_id = batch.batch_id
        op.resume_kwargs = {ROUNDS_KWARG: list(rounds)}
        end_time = time.time() + op.timeout if op.timeout is not None else None
        op._wait(hook, batch.batch_id, end_time)
    return rounds


def finish_rounds(
    op: XAIBatchOperator,
    hook: XAIBatchHook,
    context: Context,
    batch: dict[str, Any],
    rounds: list[str] | None,
) -> Any:
    """After a round completed: run the remaining rounds, then export them as one (or return the batch)."""
    rounds = list(rounds) if rounds else [str(batch["batch_id"])]
    rounds = run_rounds(op, hook, context, rounds)
    if op.output_path is None:
        first = hook.get_batch(rounds[0]).to_xcom()
        first[ROUNDS_KWARG] = rounds
        return first
    with task_input_metadata(op, context) as metadata:
        return export_rounds(
            hook.get_conn(),
            rounds,
            op.output_path,
            output_conn_id=op.output_conn_id,
            log=op.log,
            output_format=op.output_format,
            metadata=metadata,
        )
