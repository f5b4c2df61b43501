"""Where the emulator gets the time: the wall clock, or a clock tests move by hand."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Anything with ``now()`` returning epoch seconds."""

    def now(self) -> float: ...


class SystemClock:
    """The wall clock.

    >>> SystemClock().now() > 1_700_000_000
    True
    """

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that only moves when told to, so processing and rate windows are deterministic.

    >>> clock = ManualClock(1_000.0)
    >>> clock.advance(2.5)
    >>> clock.now()
    1002.5
    >>> clock.set(50.0)
    >>> clock.now()
    50.0
    """

    def __init__(self, start: float = 1_788_000_000.0) -> None:
        self._now = float(start)
        # The HTTP adapter reads the clock from worker threads while a test moves it.
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock only moves forward; use set() to go back")
        with self._lock:
            self._now += seconds

    def set(self, t: float) -> None:
        with self._lock:
            self._now = float(t)


def utc_date(epoch_seconds: float) -> str:
    """The date-only UTC form the REST API shows for every batch timestamp.

    >>> utc_date(0)
    '1970-01-01'
    """
    return time.strftime("%Y-%m-%d", time.gmtime(epoch_seconds))
