"""Which per-request errors are worth another try: the one place that decides.

xAI reports a failed request as a plain error string (``batch_result.error``). Some describe
trouble on the service's side that a later batch will not meet (an internal error, capacity, a
timeout); most describe the request itself (invalid parameters, an unsupported model, content
refused), and sending it again changes nothing but the bill. :func:`is_passing_error` tells them
apart by the words of the message; it is deliberately conservative: an error it does not know is
not resent.

Pass another function as ``XAIBatchOperator(..., resubmit=ResubmitPolicy(retry_if=...))`` to decide
differently; it gets the error string and returns whether to resend::

    def my_policy(error: str) -> bool:
        return is_passing_error(error) or "content moderation service" in error.lower()
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

ErrorPolicy = Callable[[str], bool]
"""Decides from a failed request's error message whether to send the request again."""

# Lower-case fragments of messages about the service's own, passing trouble.
PASSING_ERROR_PATTERNS: tuple[str, ...] = (
    "internal error",
    "internal server error",
    "server error",
    "temporarily",
    "at capacity",
    "overloaded",
    "rate limit",
    "resource has been exhausted",
    "resource exhausted",
    "unavailable",
    "deadline exceeded",
    "timed out",
    "timeout",
    "try again",
)

# Fragments that win over the above: no later batch fixes these.
LASTING_ERROR_PATTERNS: tuple[str, ...] = (
    "batch cancelled",
    "spending limit",
    "credits",
    "not supported",
    "must be positive",
)


def is_passing_error(error: str) -> bool:
    """Whether a request that failed with ``error`` may well succeed in a later batch.

    >>> is_passing_error("Internal error while processing the request")
    True
    >>> is_passing_error("The service is temporarily at capacity, please try again later")
    True
    >>> is_passing_error("Model grok-x is not supported for batch processing.")
    False
    >>> is_passing_error("Batch cancelled")
    False
    """
    text = error.strip().lower()
    if not text or any(pattern in text for pattern in LASTING_ERROR_PATTERNS):
        return False
    return any(pattern in text for pattern in PASSING_ERROR_PATTERNS)


@dataclass(frozen=True)
class ResubmitPolicy:
    """How a task resends requests that failed for a passing reason: how many rounds, and which errors.

    ``rounds`` is the most follow-up batches the task makes (``0``: none); ``retry_if`` decides from a
    failed request's error message whether to resend it (default :func:`is_passing_error`).

    >>> ResubmitPolicy(rounds=2).retry_if("Internal error while processing the request")
    True
    >>> ResubmitPolicy(rounds=-1)
    Traceback (most recent call last):
    ...
    ValueError: ResubmitPolicy: rounds must be a whole number >= 0, not -1
    """

    rounds: int = 1
    retry_if: ErrorPolicy = is_passing_error

    def __post_init__(self) -> None:
        # bool is an int: ``rounds=True`` is a mistake, not one round.
        if isinstance(self.rounds, bool) or not isinstance(self.rounds, int) or self.rounds < 0:
            raise ValueError(f"ResubmitPolicy: rounds must be a whole number >= 0, not {self.rounds!r}")
        if not callable(self.retry_if):
            raise TypeError("ResubmitPolicy: retry_if must be a function of the error message")
