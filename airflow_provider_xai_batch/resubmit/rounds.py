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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from airflow_provider_xai_batch.resubmit.policy import ErrorPolicy, ResubmitPolicy, is_passing_error

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


@dataclass(frozen=True)
class NextRound:
    """The follow-up round a finished round calls for: its number, batch name, state key and requests."""

    number: int
    name: str
    state_key: str
    resend: frozenset[str]
    failed_for_good: int


class RoundsPlan:
    """Decides, round after round, whether a task makes another follow-up batch, and what it holds.

    Pure, like :class:`~airflow_provider_xai_batch.waiting.poller.BatchPoller`: the caller reads a
    finished round's outcomes and creates, fills and waits for the batches; this only decides. It
    keeps the batch ids of the rounds so far (:attr:`rounds`), which is all a deferred task needs
    to carry to pick up where it left off.

    >>> plan = RoundsPlan("nightly", ResubmitPolicy(rounds=1), ["batch_0"])
    >>> plan.more_allowed
    True
    >>> step = plan.next_round([("a", None), ("b", "Internal error while processing the request")])
    >>> step.number, step.name, step.state_key, sorted(step.resend)
    (1, 'nightly-round-1', 'xai_batch_id_round_1', ['b'])
    >>> plan.started("batch_1")
    >>> plan.rounds, plan.more_allowed
    (['batch_0', 'batch_1'], False)
    """

    def __init__(self, name: str, policy: ResubmitPolicy, rounds: Sequence[str]) -> None:
        if not rounds:
            raise ValueError("RoundsPlan needs the batch id of round 0")
        self.name = name
        self.policy = policy
        self.rounds: list[str] = list(rounds)
        # Set when next_round found nothing to resend: the latest round's lasting failures.
        self.failed_for_good = 0

    @property
    def last(self) -> str:
        """The batch id of the latest round."""
        return self.rounds[-1]

    @property
    def more_allowed(self) -> bool:
        """Whether the policy allows another follow-up round after the latest one."""
        return len(self.rounds) <= self.policy.rounds

    def next_round(self, outcomes: Iterable[tuple[str, str | None]]) -> NextRound | None:
        """The round the latest round's ``(request id, error or None)`` outcomes call for; ``None``: stop.

        ``None`` when the policy allows no more rounds (the outcomes are then not read at all) or
        when nothing failed for a reason the policy resends.
        """
        if not self.more_allowed:
            return None
        plan = plan_resend(outcomes, self.policy.retry_if)
        if plan.empty:
            self.failed_for_good = plan.failed_for_good
            return None
        number = len(self.rounds)
        return NextRound(
            number=number,
            name=round_name(self.name, number),
            state_key=round_state_key(number),
            resend=frozenset(plan.resend),
            failed_for_good=plan.failed_for_good,
        )

    def started(self, batch_id: str) -> None:
        """Record the batch of the round :meth:`next_round` asked for."""
        self.rounds.append(batch_id)
