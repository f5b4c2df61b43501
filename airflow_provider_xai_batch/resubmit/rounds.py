"""Rounds of one task: their names, where their ids are kept, and what the next round resends.

Round 0 is the batch the task submits; round ``k`` (from 1) is the ``k``-th follow-up batch, holding
only requests whose previous attempt failed for a passing reason. Each round gets a deterministic
name and task-state key, so a retry of the task re-attaches to the rounds already made rather than
creating them again.

>>> round_name("nightly", 0), round_name("nightly", 2)
('nightly', 'nightly-round-2')
>>> round_state_key(0), round_state_key(2)
('xai_batch_id', 'xai_batch_id_round_2')
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from airflow_provider_xai_batch.resubmit.policy import ErrorPolicy, is_passing_error

BASE_STATE_KEY = "xai_batch_id"


def round_name(name: str, round_number: int) -> str:
    """The batch name of a round, before the per-task-instance suffix is appended."""
    return name if round_number == 0 else f"{name}-round-{round_number}"


def round_state_key(round_number: int) -> str:
    """The task-state key that keeps a round's batch id (round 0 shares the create operator's key)."""
    return BASE_STATE_KEY if round_number == 0 else f"{BASE_STATE_KEY}_round_{round_number}"


@dataclass
class ResendPlan:
    """What a finished round leaves to do: the ids to resend, and how many failures stay as they are."""

    resend: set[str] = field(default_factory=set)
    failed_for_good: int = 0
    succeeded: int = 0

    @property
    def empty(self) -> bool:
        return not self.resend


def plan_resend(
    outcomes: Iterable[tuple[str, str | None]], policy: ErrorPolicy = is_passing_error
) -> ResendPlan:
    """Sort one round's ``(request id, error or None)`` outcomes into resend / keep.

    >>> plan = plan_resend([("a", None), ("b", "Internal error while processing the request"),
    ...                     ("c", "Maximum number of tokens max_tokens must be positive")])
    >>> sorted(plan.resend), plan.failed_for_good, plan.succeeded
    (['b'], 1, 1)
    """
    plan = ResendPlan()
    for request_id, error in outcomes:
        if error is None:
            plan.succeeded += 1
        elif policy(error):
            plan.resend.add(request_id)
        else:
            plan.failed_for_good += 1
    return plan
