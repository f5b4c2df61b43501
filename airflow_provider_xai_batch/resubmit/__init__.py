"""Re-running only the requests that failed for a passing reason, in follow-up batches ("rounds").

A large batch nearly always has a few requests that fail for reasons a second try fixes (a
service-side internal error, capacity), beside some that never will (invalid parameters). With
``XAIBatchOperator(..., resubmit=ResubmitPolicy(rounds=N))`` the first kind go into a follow-up
batch, up to ``N`` times; the results then show each request once, with its final outcome and how many attempts it
took.

- :mod:`.policy`: which errors are passing (:func:`is_passing_error`, the one place that decides).
- :mod:`.policy`: also :class:`ResubmitPolicy`, the operator's one resubmission option.
- :mod:`.rounds`: round names and state keys, which requests the next round resends, and
  :class:`RoundsPlan`, which decides round after round whether another one is due.
- :mod:`.merge`: the final outcome of each request across rounds, streamed in id order.

All pure; the operator's I/O lives in :mod:`airflow_provider_xai_batch.operators._resubmit`.

>>> is_passing_error("Internal error while processing the request")
True
>>> is_passing_error("Maximum number of tokens max_tokens must be positive but max_tokens = -5")
False
"""

from __future__ import annotations

from airflow_provider_xai_batch.resubmit.merge import FinalOutcome, RoundRow, merge_rounds
from airflow_provider_xai_batch.resubmit.policy import (
    PASSING_ERROR_PATTERNS,
    ErrorPolicy,
    ResubmitPolicy,
    is_passing_error,
)
from airflow_provider_xai_batch.resubmit.rounds import (
    NextRound,
    ResendPlan,
    RoundsPlan,
    plan_resend,
    round_name,
    round_state_key,
)

__all__ = [
    "PASSING_ERROR_PATTERNS",
    "ErrorPolicy",
    "FinalOutcome",
    "NextRound",
    "ResendPlan",
    "ResubmitPolicy",
    "RoundRow",
    "RoundsPlan",
    "is_passing_error",
    "merge_rounds",
    "plan_resend",
    "round_name",
    "round_state_key",
]
