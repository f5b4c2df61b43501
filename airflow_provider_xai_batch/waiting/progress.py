"""Progress lines while a batch runs: when to log one, and what it says.

Users watch hours-long batches from the task log, so a wait logs whenever the counts (or the
status) changed, but at most once per ``interval`` so hundreds of waits sharing a triggerer do not
flood it::

    Batch batch_1 is processing: 1,200/5,000 done (24.0%), 12.5 requests/s, about 5m 4s left,
    $0.42 so far (1,150 succeeded, 50 failed, 0 cancelled)

:func:`batch_figures` is the one place these figures are computed: the task log lines, the
trigger's and sensor's events and the provider's batches page all read them from it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

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


TICKS_PER_USD = 10_000_000_000  # the service counts money in ticks of 1e-10 USD


def cost_so_far_usd(batch: Batch) -> float | None:
    """What the batch has cost so far, in USD, when the service reports it (``cost_breakdown``).

    The field is not in the wire contract; the service (and the emulator) may add it. ``None``
    when absent or unreadable, so a missing figure is never shown as a free batch.

    >>> cost_so_far_usd(Batch.model_validate({"batch_id": "b", "cost_breakdown": {"total_cost_in_usd_ticks": 25_000_000}}))
    0.0025
    >>> cost_so_far_usd(Batch(batch_id="b")) is None
    True
    """
    breakdown = getattr(batch, "cost_breakdown", None)  # an extra field: pydantic keeps it as given
    if not isinstance(breakdown, dict):
        return None
    ticks = breakdown.get("total_cost_in_usd_ticks")
    if isinstance(ticks, bool) or not isinstance(ticks, (int, float)):
        return None
    return float(ticks) / TICKS_PER_USD


def format_cost(usd: float) -> str:
    """Dollars with as many decimals as a small amount needs.

    >>> format_cost(12.3456), format_cost(0.0025), format_cost(0), format_cost(0.0000012)
    ('$12.35', '$0.0025', '$0.00', '< $0.0001')
    """
    if usd == 0 or abs(usd) >= 0.01:
        return f"${usd:,.2f}"
    if abs(usd) < 0.0001:  # a few requests cost fractions of a cent: not "$0.0000"
        return "< $0.0001"
    return f"${usd:.4f}"


@dataclasses.dataclass(frozen=True)
class BatchFigures:
    """Where a batch stands, the same figures for the task log, the batches page and the events.

    ``rate`` (requests finished per second) is ``None`` until two observations are apart in time
    and something finished in between; ``seconds_left`` then follows from it. ``cost_usd`` is
    ``None`` when the service does not report a cost.

    >>> from airflow_provider_xai_batch.client import BatchState
    >>> state = BatchState(num_requests=10, num_pending=6, num_success=3, num_error=1)
    >>> figures = batch_figures(Batch(batch_id="b", state=state), rate=2.0)
    >>> figures.done, figures.percent, figures.seconds_left
    (4, 40.0, 3.0)
    """

    batch_id: str
    status: str
    total: int
    done: int
    pending: int
    succeeded: int
    failed: int
    cancelled: int
    percent: float | None
    rate: float | None
    seconds_left: float | None
    cost_usd: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, for trigger events and XCom."""
        return dataclasses.asdict(self)


def batch_figures(batch: Batch, rate: float | None = None) -> BatchFigures:
    """The figures of ``batch`` at ``rate`` requests/s (``None``: not measured yet).

    A rate of zero or less counts as unknown: nothing finished, so no time left can be told.
    """
    state = batch.state
    done = state.num_success + state.num_error + state.num_cancelled
    total = state.num_requests
    known_rate = rate if rate is not None and rate > 0 else None
    status = batch.status
    seconds_left: float | None = None
    if known_rate is not None and not status.is_terminal:
        seconds_left = state.num_pending / known_rate
    return BatchFigures(
        batch_id=batch.batch_id,
        status=status.value,
        total=total,
        done=done,
        pending=state.num_pending,
        succeeded=state.num_success,
        failed=state.num_error,
        cancelled=state.num_cancelled,
        percent=round(100.0 * done / total, 1) if total else None,
        rate=known_rate,
        seconds_left=seconds_left,
        cost_usd=cost_so_far_usd(batch),
    )


def figures_line(figures: BatchFigures) -> str:
    """The progress line of :func:`batch_figures`; the rate and time left only once measured.

    >>> from airflow_provider_xai_batch.client import BatchState
    >>> state = BatchState(num_requests=100, num_pending=100)
    >>> figures_line(batch_figures(Batch(batch_id="b", state=state)))
    'Batch b is processing: 0/100 done (0.0%) (0 succeeded, 0 failed, 0 cancelled)'
    """
    percent = f"{figures.percent:.1f}%" if figures.percent is not None else "n/a"
    pace = ""
    if figures.rate is not None:
        pace = f", {figures.rate:,.1f} requests/s"
        if figures.seconds_left is not None:
            pace += f", about {format_duration(figures.seconds_left)} left"
    cost = f", {format_cost(figures.cost_usd)} so far" if figures.cost_usd is not None else ""
    return (
        f"Batch {figures.batch_id} is {figures.status}: {figures.done:,}/{figures.total:,} done ({percent})"
        f"{pace}{cost} ({figures.succeeded:,} succeeded, {figures.failed:,} failed, "
        f"{figures.cancelled:,} cancelled)"
    )


def progress_line(batch: Batch, rate: float | None) -> str:
    """One line on a running batch: done/total, percent, rate and the time left at that rate, cost so far.

    Before a rate is measured (the first line of a wait) the line leaves the rate out rather
    than saying it is unknown.

    >>> from airflow_provider_xai_batch.client import BatchState
    >>> state = BatchState(num_requests=5000, num_pending=3800, num_success=1150, num_error=50)
    >>> progress_line(Batch(batch_id="b", state=state), 12.5)
    'Batch b is processing: 1,200/5,000 done (24.0%), 12.5 requests/s, about 5m 4s left (1,150 succeeded, 50 failed, 0 cancelled)'
    """
    return figures_line(batch_figures(batch, rate))


def measured_rate(first: tuple[float, int] | None, now: float, done: int) -> float | None:
    """Requests finished per second since ``first`` (a time and a done count), or ``None``.

    >>> measured_rate((0.0, 10), 60.0, 70), measured_rate((0.0, 10), 0.0, 10), measured_rate(None, 5.0, 3)
    (1.0, None, None)
    """
    if first is None:
        return None
    started, done_then = first
    elapsed = now - started
    return (done - done_then) / elapsed if elapsed > 0 and done > done_then else None


class RateMemory:
    """The first sighting of each batch, so a page that only reads a batch now can tell a rate.

    Bounded: the oldest sightings are forgotten past ``size`` batches.

    >>> from airflow_provider_xai_batch.client import BatchState
    >>> memory = RateMemory(size=2)
    >>> def at(done):
    ...     return Batch(batch_id="b", state=BatchState(num_requests=100, num_pending=100 - done, num_success=done))
    >>> memory.rate(at(10), now=0.0) is None, memory.rate(at(40), now=30.0)
    (True, 1.0)
    """

    def __init__(self, size: int = 1000) -> None:
        self.size = size
        self._first: dict[str, tuple[float, int]] = {}

    def rate(self, batch: Batch, *, now: float) -> float | None:
        state = batch.state
        done = state.num_success + state.num_error + state.num_cancelled
        first = self._first.get(batch.batch_id)
        if first is None:
            if len(self._first) >= self.size:
                self._first.pop(next(iter(self._first)))
            self._first[batch.batch_id] = (now, done)
            return None
        return measured_rate(first, now, done)


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
        return progress_line(batch, measured_rate(self._first, now, done))
