"""Which per-request errors are worth another try: the one place that decides.

xAI reports a failed request as a plain error string (``batch_result.error``). Some describe
trouble on the service's side that a later batch will not meet (an internal error, capacity, a
timeout); most describe the request itself (invalid parameters, an unsupported model, content
refused), and sending it again changes nothing but the bill. :func:`is_passing_error` tells them
apart by the words of the message; it is deliberately conservative: an error it does not know is
not resent.

Pass another function as ``XAIBatchOperator(..., resubmit_if=...)`` to decide differently; it gets
the error string and returns whether to resend::

    def my_policy(error: str) -> bool:
        return is_passing_error(error) or "content moderation service" in error.lower()
"""

from __future__ import annotations

from collections.abc import Callable

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
