"""Retry and pacing decisions: how often, how long to wait, how fast to send. Pure, no I/O.

>>> RetryPolicy(jitter=lambda delay: delay).retry_delay(0, status_code=503)
0.5
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# An add call's body wraps its requests in {"batch_requests":[...]}: a request alone must fit in it.
ADD_CALL_ENVELOPE: tuple[bytes, bytes] = (b'{"batch_requests":[', b"]}")


def capped_exponential(first: float, failures: int, cap: float, *, multiplier: float = 2.0) -> float:
    """``first`` times ``multiplier`` per earlier failure, never above ``cap``: the one backoff formula.

    ``failures`` counts the tries already failed before this wait, from 0.

    >>> [capped_exponential(0.5, n, 5.0) for n in range(6)]
    [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    """
    return min(cap, first * multiplier ** max(0, failures))


@dataclass(frozen=True)
class ClientLimits:
    """The service's published limits, as settings (they changed twice in 2026; teams may differ).

    ``None`` for a rate switches client-side pacing of that call off.

    >>> ClientLimits().max_add_call_bytes
    25000000
    """

    create_calls: int | None = 2
    create_window_seconds: float = 1.0
    add_calls: int | None = 1000
    add_window_seconds: float = 30.0
    max_add_call_bytes: int = 25_000_000
    max_request_bytes: int = 25_000_000
    max_requests_per_call: int | None = None

    @property
    def largest_request_bytes(self) -> int:
        """The largest single request these limits let through, the one size rule of every input check.

        A request must fit as a request, and alone in an add call's body (which wraps it).

        >>> ClientLimits(max_request_bytes=1000, max_add_call_bytes=500).largest_request_bytes
        479
        """
        envelope = sum(len(part) for part in ADD_CALL_ENVELOPE)
        return min(self.max_request_bytes, self.max_add_call_bytes - envelope)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ClientLimits:
        """Build limits from a connection's extra, ignoring keys that are not limits."""
        known = {name for name in cls.__dataclass_fields__}
        return cls(**{key: value for key, value in values.items() if key in known})


@dataclass
class RetryPolicy:
    """When to retry and how long to wait: capped exponential backoff with jitter.

    Only 429, 5xx and connection errors are retried; other 4xx never are. A ``Retry-After`` hint is
    honoured when the service sends one (it does not today). Jitter is a separate function so tests
    can pin it.

    A service that cannot be reached at all (refused, unknown host, no answer to connecting) is
    retried at most ``connect_retries`` times and for at most ``connect_retry_seconds`` in all, so a
    wrong URL or a service that is down fails within seconds, not minutes.

    >>> policy = RetryPolicy(initial_delay=1.0, max_delay=8.0, jitter=lambda delay: delay)
    >>> [policy.backoff(attempt) for attempt in range(5)]
    [1.0, 2.0, 4.0, 8.0, 8.0]
    >>> policy.retry_delay(0, status_code=404) is None
    True
    >>> [policy.reconnect_delay(attempt, elapsed=0.0) for attempt in range(4)]
    [1.0, 2.0, 4.0, None]
    """

    max_retries: int = 8
    initial_delay: float = 0.5
    max_delay: float = 30.0
    multiplier: float = 2.0
    jitter: Callable[[float], float] = field(default=lambda delay: delay * random.uniform(0.5, 1.0))
    connect_retries: int = 3
    connect_retry_seconds: float = 10.0

    def backoff(self, attempt: int) -> float:
        """The delay before retry number ``attempt + 1``, jitter applied, never above the cap."""
        raw = capped_exponential(self.initial_delay, attempt, self.max_delay, multiplier=self.multiplier)
        return max(0.0, min(self.max_delay, self.jitter(raw)))

    @staticmethod
    def is_retryable_status(status_code: int) -> bool:
        return status_code == 429 or status_code >= 500

    def retry_delay(
        self,
        attempt: int,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> float | None:
        """Seconds to wait before retrying, or ``None`` to give up (not retryable, or out of retries).

        ``status_code=None`` stands for a connection error.
        """
        if attempt >= self.max_retries:
            return None
        if status_code is not None and not self.is_retryable_status(status_code):
            return None
        if retry_after is not None:
            return min(retry_after, self.max_delay * 4)
        return self.backoff(attempt)

    def reconnect_delay(self, attempt: int, *, elapsed: float) -> float | None:
        """Seconds to wait before trying to reach an unreachable service again, or ``None`` to give up.

        ``elapsed`` is the time spent on this call so far; the wait never takes it past
        ``connect_retry_seconds``.
        """
        if attempt >= min(self.max_retries, self.connect_retries):
            return None
        delay = self.backoff(attempt)
        if elapsed + delay > self.connect_retry_seconds:
            return None
        return delay


class SlidingWindowLimiter:
    """Client-side pacing: at most ``limit`` calls in any rolling ``window`` seconds.

    :meth:`reserve` books the next free slot and says how long to wait for it, so concurrent callers
    (async tasks, threads under the caller's lock) each get their own slot.

    >>> limiter = SlidingWindowLimiter(limit=2, window=10.0, margin=0.0)
    >>> [limiter.reserve(now=0.0), limiter.reserve(now=0.0), limiter.reserve(now=1.0)]
    [0.0, 0.0, 9.0]
    """

    def __init__(self, limit: int, window: float, *, margin: float = 0.05) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a rate limit needs limit >= 1 and window > 0")
        self.limit = limit
        self.window = window
        # A small margin keeps us under the limit despite clock skew and transit time.
        self.margin = margin
        self._slots: deque[float] = deque()

    def reserve(self, now: float) -> float:
        slot = now
        if len(self._slots) >= self.limit:
            slot = max(now, self._slots.popleft() + self.window + self.margin)
        self._slots.append(slot)
        return slot - now


def next_lookup_pause(
    lookups_done: int, remaining: float, *, first: float = 0.5, cap: float = 5.0
) -> float | None:
    """How long to wait before looking for a batch whose creation had an unclear outcome again.

    The create may still be on its way through the service: look-ups come quickly at first, then
    every ``cap`` seconds, the last one at the end of the window; ``None`` once it is over.

    >>> [next_lookup_pause(done, remaining=6.0) for done in range(5)], next_lookup_pause(0, remaining=0.0)
    ([0.5, 1.0, 2.0, 4.0, 5.0], None)
    >>> next_lookup_pause(3, remaining=1.5)
    1.5
    """
    if remaining <= 0:
        return None
    return min(capped_exponential(first, lookups_done, cap), remaining)
