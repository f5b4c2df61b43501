"""Progress lines while a batch runs: when to log one, and what it says.

Users watch hours-long batches from the task log, so a wait logs whenever the counts (or the
status) changed, but at most once per ``interval`` so hundreds of waits sharing a triggerer do not
flood it::

    Batch batch_1 is processing: 1,200/5,000 done (24.0%), 12.5 requests/s, about 5m 4s left
    (1,150 succeeded, 50 failed, 0 cancelled)
"""

from __future__ import annotations

import dataclasses

from airflow_provider_xai_batch.client import Batch

DEFAULT_PROGRESS_INTERVAL = 60.0


def format_duration(seconds: float) -> str:
    """A short human duration.

    >>> format_duration(42), format_duration(304), format_duration(7384), format_duration(200000)
    ('42s', '5m 4s', '2h 3m', '2d 7h')
    """
    total = max(0, round(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def progress_line(batch: Batch, rate: float | None) -> str:
    """One line on a running batch: done/total, percent, rate and the time left at that rate.

    >>> from airflow_provider_xai_batch.client import BatchState
    >>> state = BatchState(num_requests=5000, num_pending=3800, num_success=1150, num_error=50)
    >>> progress_line(Batch(batch_id="b", state=state), 12.5)
    'Batch b is processing: 1,200/5,000 done (24.0%), 12.5 requests/s, about 5m 4s left (1,150 succeeded, 50 failed, 0 cancelled)'
    """
    state = batch.state
    done = state.num_success + state.num_error + state.num_cancelled
    total = state.num_requests
    percent = f"{100.0 * done / total:.1f}%" if total else "n/a"
    if rate is None or rate <= 0:
        pace = "rate not known yet"
    else:
        pace = f"{rate:,.1f} requests/s, about {format_duration(state.num_pending / rate)} left"
    return (
        f"Batch {batch.batch_id} is {batch.status.value}: {done:,}/{total:,} done ({percent}), {pace} "
        f"({state.num_success:,} succeeded, {state.num_error:,} failed, {state.num_cancelled:,} cancelled)"
    )


def per_second(count: float, seconds: float) -> float:
    """``count`` per second over ``seconds``; 0 before any time has passed. Every progress rate is this.

    >>> per_second(1200, 2.4), per_second(5, 0)
    (500.0, 0.0)
    """
    return count / seconds if seconds > 0 else 0.0


@dataclasses.dataclass
class Pacing:
    """When a progress line is due: at most once per ``interval`` seconds (the first at once, unless
    ``last`` says when the count started). The one pacing of every progress log of the package.

    >>> pacing = Pacing(interval=60, last=0.0)
    >>> pacing.due(30), pacing.due(61)
    (False, True)
    >>> pacing.mark(61); pacing.due(100)
    False
    """

    interval: float = DEFAULT_PROGRESS_INTERVAL
    last: float | None = None

    def due(self, now: float) -> bool:
        return self.last is None or now - self.last >= self.interval

    def mark(self, now: float) -> None:
        self.last = now


@dataclasses.dataclass
class ProgressLog:
    """Decides, poll after poll, whether to log progress, and returns the line when it is time.

    A line when the status or the counts changed since the last line, at most once per
    ``interval`` seconds; the first batch seen is always reported. The rate is measured from the
    first batch seen, so it reflects this wait rather than a guess.

    >>> from airflow_provider_xai_batch.client import BatchState
    >>> log = ProgressLog(interval=60)
    >>> def at(done):
    ...     return Batch(batch_id="b", state=BatchState(num_requests=100, num_pending=100 - done, num_success=done))
    >>> bool(log.line(at(0), now=0)), log.line(at(10), now=30)  # the first; then too soon
    (True, None)
    >>> log.line(at(10), now=90)
    'Batch b is processing: 10/100 done (10.0%), 0.1 requests/s, about 13m 30s left (10 succeeded, 0 failed, 0 cancelled)'
    >>> log.line(at(10), now=600) is None  # nothing changed
    True
    """

    interval: float = DEFAULT_PROGRESS_INTERVAL
    _first: tuple[float, int] | None = None
    _pacing: Pacing | None = None
    _logged_state: tuple[str, int, int, int, int] | None = None

    def line(self, batch: Batch, *, now: float) -> str | None:
        """The progress line to log for this poll, or ``None``."""
        state = batch.state
        done = state.num_success + state.num_error + state.num_cancelled
        if self._first is None:
            self._first = (now, done)
        snapshot = (
            batch.status.value,
            state.num_requests,
            state.num_success,
            state.num_error,
            state.num_cancelled,
        )
        if snapshot == self._logged_state:
            return None
        if self._pacing is None:
            self._pacing = Pacing(self.interval)
        if not self._pacing.due(now):
            return None
        self._pacing.mark(now)
        self._logged_state = snapshot
        started, done_then = self._first
        elapsed = now - started
        rate = (done - done_then) / elapsed if elapsed > 0 and done > done_then else None
        return progress_line(batch, rate)
