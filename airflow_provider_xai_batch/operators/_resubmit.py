"""The I/O of follow-up rounds: a finished round's outcomes, and resending the requests picked for the next.

What a round means and whether another is due is decided by
:class:`~airflow_provider_xai_batch.resubmit.RoundsPlan` (pure); the operator runs the rounds
(:class:`~airflow_provider_xai_batch.operators.one_task.XAIBatchOperator`). The requests of a round
are read again from the task's input and picked out by their deterministic ids, so a retry of the
task picks the same ones, and re-adding them to a re-attached round is a no-op.
"""

from __future__ import annotations

from collections.abc import Iterator, Set
from typing import TYPE_CHECKING

from airflow_provider_xai_batch.client.errors import XAIInputError
from airflow_provider_xai_batch.client.inputs import NativeRequest
from airflow_provider_xai_batch.sources import ResolvedInput, iter_native

if TYPE_CHECKING:
    from airflow_provider_xai_batch.hooks.xai import XAIBatchHook


def round_outcomes(hook: XAIBatchHook, batch_id: str) -> Iterator[tuple[str, str | None]]:
    """Each request of a finished round as ``(request id, error or None)``, streamed page by page."""
    for result in hook.iter_results(batch_id):
        yield result.batch_request_id, (None if result.succeeded else (result.error or ""))


def _picked(requests: Iterator[NativeRequest], wanted: Set[str], found: set[str]) -> Iterator[NativeRequest]:
    for request in requests:
        request_id = request["batch_request_id"]
        if request_id in wanted:
            found.add(request_id)
            yield request


def resend(hook: XAIBatchHook, resolved: ResolvedInput, batch_id: str, wanted: Set[str]) -> int:
    """Add the requests of ``resolved`` whose ids are in ``wanted`` to ``batch_id``; return how many were sent.

    Every wanted request must still be in the input: one that is gone means the input changed
    while the task ran, which is an input error rather than a silently smaller round.
    """
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
