"""What one poll result means: done, wait how long, read the connection again, or stop.

The trigger's async loop, the sensor's poke and the one-task operator's synchronous loop differ
only in how they call the service and how they sleep. Every decision about a poll result is made
here, once, so the three cannot drift::

    poller = BatchPoller("batch_1", poll_interval=60, end_time=time.time() + 3600)
    while True:
        try:
            answer = client.get_batch("batch_1")
        except Exception as error:
            answer = error
        step = poller.step(answer, now=time.time(), log=log)
        if step.event is not None:
            return step.event           # the one event that ends the wait
        if step.renew:
            client = read_connection_again()
            continue
        time.sleep(step.delay)

No I/O, no clock and no randomness of its own: the caller passes ``now``, and jitter is a function
tests can pin.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from typing import Any

from airflow_provider_xai_batch.client import (
    Batch,
    XAIAuthenticationError,
    XAIConnectionError,
    XAIError,
    XAIRateLimitError,
    XAIServerError,
)
from airflow_provider_xai_batch.client.policy import capped_exponential
from airflow_provider_xai_batch.exceptions import error_kind
from airflow_provider_xai_batch.logs import LogLike
from airflow_provider_xai_batch.waiting.events import batch_event, describe_batch
from airflow_provider_xai_batch.waiting.progress import DEFAULT_PROGRESS_INTERVAL, ProgressLog

DEFAULT_POLL_INTERVAL = 60.0
# The count of failed polls that used to end a wait; kept for callers that pass it explicitly.
DEFAULT_MAX_TRANSIENT_ERRORS = 10
# How long a wait rides out a service it cannot reach (429, 5xx, network) before it gives up:
# long enough for a typical outage, short enough that nobody waits most of an hour for a red task.
DEFAULT_OUTAGE_TOLERANCE = 900.0
# Backoff after transient errors never exceeds this (unless the poll interval itself is longer).
MAX_BACKOFF_SECONDS = 600.0
# Each sleep is the poll interval give or take this fraction.
POLL_JITTER = 0.1

TRANSIENT_ERRORS: tuple[type[Exception], ...] = (XAIRateLimitError, XAIServerError, XAIConnectionError)


def backoff_jitter(delay: float) -> float:
    """Up to 10 % more than ``delay``, so waits that failed together do not retry together."""
    return delay * random.uniform(1.0, 1.1)


def poll_jitter(delay: float) -> float:
    """``delay`` give or take :data:`POLL_JITTER`: triggers restarted together must not poll in lockstep."""
    return delay * random.uniform(1.0 - POLL_JITTER, 1.0 + POLL_JITTER)


def transient_backoff(
    poll_interval: float,
    failures: int,
    *,
    cap: float = MAX_BACKOFF_SECONDS,
    jitter: Callable[[float], float] = backoff_jitter,
) -> float:
    """Seconds to wait after the ``failures``-th transient error in a row: capped exponential.

    Starts at the poll interval (never polls faster than the user asked), doubles per failure,
    and stops growing at ``cap`` (or at the poll interval when that is longer).

    >>> [transient_backoff(60, n, jitter=lambda d: d) for n in (1, 2, 3, 4, 5, 6)]
    [60.0, 120.0, 240.0, 480.0, 600.0, 600.0]
    """
    ceiling = max(cap, poll_interval)
    raw = capped_exponential(poll_interval, failures - 1, ceiling)
    return float(min(ceiling, max(0.0, jitter(raw))))


@dataclasses.dataclass(frozen=True)
class PollStep:
    """What to do after one poll.

    - ``event`` set: the wait is over; it is the payload of :func:`~.events.batch_event`.
      ``error`` then holds the exception that ended it, if one did, so a synchronous caller can
      raise the original rather than a summary.
    - ``renew``: read the connection again (the key may have been rotated) and poll at once.
    - otherwise: sleep ``delay`` seconds and poll again.

    ``progress`` is a line worth logging at info level (progress, or the final state), ``warning``
    one worth a warning (a transient failure).
    """

    event: dict[str, Any] | None = None
    error: Exception | None = None
    renew: bool = False
    delay: float = 0.0
    progress: str | None = None
    warning: str | None = None

    @property
    def done(self) -> bool:
        return self.event is not None


def check_error_budget(max_transient_errors: int | None, outage_tolerance: float | None) -> None:
    """Refuse a negative error budget; ``None`` means no limit for either.

    Checked where a wait is configured (the trigger, when the task defers) and where it runs.

    >>> check_error_budget(3, None)
    >>> check_error_budget(-1, None)
    Traceback (most recent call last):
    ValueError: max_transient_errors must not be negative
    """
    if max_transient_errors is not None and max_transient_errors < 0:
        raise ValueError("max_transient_errors must not be negative")
    if outage_tolerance is not None and outage_tolerance < 0:
        raise ValueError("outage_tolerance must not be negative")


class BatchPoller:
    """Decides, poll after poll, whether a wait for one batch is over.

    Tracks the consecutive transient failures, the last batch seen and whether the connection
    was already read again after an authentication error.

    :param batch_id: The batch waited for, echoed into the event.
    :param poll_interval: Seconds between polls while the batch runs.
    :param end_time: Wall-clock epoch seconds after which the wait ends with ``timeout``;
        ``None`` waits as long as it takes (or leaves the deadline to the caller).
    :param max_transient_errors: Consecutive transient failures (429, 5xx, network) tolerated,
        with capped exponential backoff, before the wait ends with ``error``; ``None`` (the default)
        leaves it to ``outage_tolerance``.
    :param outage_tolerance: Seconds of consecutive transient failures tolerated, counted from the
        first failed poll; then the wait ends with ``error`` and a message saying the batch may
        still be running at xAI and that clearing the task resumes the wait. Backoff never sleeps
        past it, so the last poll happens right at its end. ``None`` leaves it to
        ``max_transient_errors``.
    :param progress_interval: Seconds between progress lines at most (see :class:`.ProgressLog`).
    :param poll_jitter: Spreads the poll interval; tests pass ``lambda delay: delay``.
    :param backoff_jitter: Spreads transient backoff delays.

    >>> from airflow_provider_xai_batch.client import BatchState
    >>> poller = BatchPoller("b", poll_interval=30, poll_jitter=lambda d: d)
    >>> poller.on_batch(Batch(batch_id="b", state=BatchState(num_requests=2, num_pending=2)), now=0).delay
    30.0
    >>> poller.on_batch(Batch(batch_id="b", state=BatchState(num_requests=2, num_success=2)), now=30).event["status"]
    'success'
    """

    def __init__(
        self,
        batch_id: str,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        end_time: float | None = None,
        max_transient_errors: int | None = None,
        outage_tolerance: float | None = DEFAULT_OUTAGE_TOLERANCE,
        progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
        poll_jitter: Callable[[float], float] = poll_jitter,
        backoff_jitter: Callable[[float], float] = backoff_jitter,
    ) -> None:
        if poll_interval < 0:
            raise ValueError("poll_interval must not be negative")
        check_error_budget(max_transient_errors, outage_tolerance)
        self.batch_id = batch_id
        self.poll_interval = float(poll_interval)
        self.end_time = end_time
        self.max_transient_errors = max_transient_errors
        self.outage_tolerance = None if outage_tolerance is None else float(outage_tolerance)
        self._poll_jitter = poll_jitter
        self._backoff_jitter = backoff_jitter
        self.failures = 0
        # When the current run of transient failures began (the caller's clock); None while healthy.
        self.outage_since: float | None = None
        self.last: Batch | None = None
        self.last_error: Exception | None = None
        self.renewed = False
        self.progress = ProgressLog(progress_interval)

    def step(self, answer: Batch | Exception, *, now: float, log: LogLike | None = None) -> PollStep:
        """Decide after one poll, from the batch it returned or the exception it raised, and log the step.

        The one way every wait applies a poll: ``progress`` goes to ``log`` at info level,
        ``warning`` as a warning.
        """
        if isinstance(answer, Exception):
            step = self.on_error(answer, now=now)
        else:
            step = self.on_batch(answer, now=now)
        if log is not None:
            if step.progress is not None:
                log.info("%s", step.progress)
            if step.warning is not None:
                log.warning("%s", step.warning)
        return step

    def on_batch(self, batch: Batch, *, now: float) -> PollStep:
        """Decide after a poll that returned the batch."""
        self.failures, self.last, self.last_error, self.outage_since = 0, batch, None, None
        if batch.status.is_terminal:
            summary = describe_batch(batch)
            return PollStep(event=batch_event("success", self.batch_id, batch, summary), progress=summary)
        step = self._sleep(self._poll_jitter(self.poll_interval), now)
        return dataclasses.replace(step, progress=self.progress.line(batch, now=now))

    def on_error(self, error: Exception, *, now: float) -> PollStep:
        """Decide after a poll that raised ``error``."""
        if isinstance(error, TRANSIENT_ERRORS):
            return self._on_transient(error, now)
        if isinstance(error, XAIAuthenticationError) and not self.renewed:
            # The key may have been rotated during a long wait: read the connection once more.
            self.renewed = True
            return PollStep(renew=True)
        if isinstance(error, XAIError):
            return self.stop(f"polling batch {self.batch_id}: {error}", error)
        # An unreadable answer is as final as a 4xx: report it rather than crash.
        return self.stop(f"polling batch {self.batch_id}: {type(error).__name__}: {error}", error)

    def error_event(self, message: str, error: BaseException | None = None) -> dict[str, Any]:
        """The ``error`` event that ends the wait, also for trouble outside a poll (a missing connection).

        Its ``error_kind`` says which task error ``error`` stands for, so the resumed task fails
        at once or is retried just as if it had polled itself.
        """
        return batch_event("error", self.batch_id, self.last, message, error_kind=error_kind(error))

    def stop(self, message: str, error: Exception | None = None) -> PollStep:
        """End the wait with an ``error`` event."""
        return PollStep(event=self.error_event(message, error), error=error)

    def _on_transient(self, error: Exception, now: float) -> PollStep:
        self.failures += 1
        self.last_error = error
        if self.outage_since is None:
            self.outage_since = now
        outage = now - self.outage_since
        if self.outage_tolerance is not None and outage >= self.outage_tolerance:
            return self.stop(self._outage_message(f"for {outage:.0f}s", error), error)
        if self.max_transient_errors is not None and self.failures > self.max_transient_errors:
            return self.stop(self._outage_message(f"{self.failures} times in a row", error), error)
        delay = transient_backoff(self.poll_interval, self.failures, jitter=self._backoff_jitter)
        if self.outage_tolerance is not None:
            # The last poll of an outage happens right when the tolerance runs out, not a backoff later.
            delay = min(delay, self.outage_tolerance - outage)
        attempts = "" if self.max_transient_errors is None else f" of {self.max_transient_errors + 1}"
        warning = (
            f"Polling batch {self.batch_id} failed ({error}); attempt {self.failures}{attempts}, "
            f"next in {delay:.1f}s"
        )
        step = self._sleep(delay, now)
        return dataclasses.replace(step, warning=warning) if step.event is None else step

    def _outage_message(self, how_long: str, error: Exception) -> str:
        tolerance = "" if self.outage_tolerance is None else f" (outage tolerance {self.outage_tolerance:g}s)"
        return (
            f"polling batch {self.batch_id} failed {how_long}{tolerance}: {error}. "
            f"The batch may still be running at xAI: clear this task to resume the wait."
        )

    def _sleep(self, delay: float, now: float) -> PollStep:
        if self.end_time is None:
            return PollStep(delay=delay)
        remaining = self.end_time - now
        if remaining <= 0:
            return PollStep(event=self._timeout_event())
        # Never sleep past the deadline: the last poll happens right at end_time.
        return PollStep(delay=min(delay, remaining))

    def _timeout_event(self) -> dict[str, Any]:
        cause = f" (last poll: {self.last_error})" if self.last_error is not None else ""
        status = self.last.status.value if self.last is not None else "unknown"
        return batch_event(
            "timeout",
            self.batch_id,
            self.last,
            f"Batch {self.batch_id} was still {status} when the wait timed out{cause}; it keeps running",
        )
