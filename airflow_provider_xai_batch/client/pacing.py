"""Sharing one team limit between clients that cannot see each other: adaptive pacing of add calls.

xAI limits add calls per team (1,000 per rolling 30 s today), and every Airflow worker adding to a
team's batches draws on that one limit. A client that paces itself to the whole limit is right
when it is alone and N times too fast when N workers add at once; the service then refuses the
excess with 429, and retries pile up.

:class:`SharedWindowPacer` lets each client find its share from the one signal the service gives
(a 429) without talking to the others, in the spirit of TCP's congestion control:

* it starts at the whole limit, spaced evenly (never a burst), and never exceeds it;
* every call that goes through raises its quota a little (additive increase per call), more once
  it has gone many windows without a refusal, so a client left alone climbs back to the limit;
* a 429 means the team's window is full. The refused call does not count (the service does not
  count it either), and the quota drops to a fraction of the calls this client got through in the
  last window (multiplicative decrease to its measured share). The sum of those shares is the
  team's limit, so after a refusal the clients together ask for slightly less than the limit, and
  the client's own rolling window holds it back until its oldest call leaves the window.
* the quota never drops below ``limit / max_senders`` (16 by default): a client that sends few,
  large calls and meets a 429 that was not about the shared window (the service at capacity, a
  spending limit) would otherwise fall to one call per window and crawl back. Up to
  ``max_senders`` clients still fit under the limit at that floor.

Pure and clock-free: callers pass ``now`` (monotonic seconds), so it is tested without sleeping.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["SharedWindowPacer"]


class SharedWindowPacer:
    """Paces one client's calls under a rolling-window limit it shares with unknown others.

    :meth:`reserve` books the next slot and returns how long to wait for it; :meth:`throttled`
    reports that the last booked call was answered 429.

    >>> pacer = SharedWindowPacer(limit=10, window=10.0, margin=0.0)
    >>> [pacer.reserve(now=0.0) for _ in range(3)]    # 10 per 10 s: evenly spread, 1 s apart
    [0.0, 1.0, 2.0]
    >>> pacer.throttled(now=2.0)        # the third call was refused: two went through
    >>> pacer.quota                     # so this client's share is taken to be under two per window
    1.7
    >>> pacer.reserve(now=2.0)          # and it waits until its first call has left the window
    8.0
    """

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        margin: float = 0.05,
        decrease: float = 0.85,
        increase: float = 0.01,
        patience: float = 12.0,
        max_senders: int = 16,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a rate limit needs limit >= 1 and window > 0")
        if not 0 < decrease < 1 or increase < 0:
            raise ValueError("decrease must be in (0, 1) and increase >= 0")
        self.limit = limit
        self.window = window
        # A small margin keeps a lone client under the limit despite clock skew and transit time.
        self.margin = margin
        self.decrease = decrease
        self.increase = increase
        self.patience = patience
        self.floor = max(1.0, limit / max(1, max_senders))
        self.quota = float(limit)
        self.throttles = 0
        self._slots: deque[float] = deque()
        self._next = -math.inf
        self._last_throttle: float | None = None
        self._last_decrease: float | None = None

    def reserve(self, now: float) -> float:
        """Book the next call's slot; return the seconds to wait before sending it."""
        slot = max(now, self._next)
        allowed = max(1, math.ceil(self.quota))
        while self._slots and self._slots[0] <= slot - self.window - self.margin:
            self._slots.popleft()
        if len(self._slots) >= allowed:
            # Never more than ``allowed`` calls of this client in any one window.
            slot = max(slot, self._slots[-allowed] + self.window + self.margin)
        self._slots.append(slot)
        # Evenly spread, never in a burst: clients starting together then fill the window in
        # about equal shares, and each learns its share from its first refusal.
        self._next = slot + self.window / self.quota
        self.quota = min(float(self.limit), self.quota + self._growth(slot))
        return slot - now

    def throttled(self, now: float) -> None:
        """The last booked call was refused with 429: shrink to a fraction of this client's share."""
        if self._slots:
            self._slots.pop()  # refused calls do not count against the window
        self.throttles += 1
        recovering = self._last_decrease is not None and now - self._last_decrease < self.window
        if not recovering:
            # One decrease per window: the refusals that follow a decrease were caused by calls
            # the others sent before they had heard of the full window too.
            got_through = sum(1 for slot in self._slots if slot > now - self.window)
            self.quota = max(self.floor, min(self.quota, self.decrease * got_through))
            self._last_decrease = now
        self._next = max(self._next, now + self.window / self.quota)
        self._last_throttle = now

    def _growth(self, now: float) -> float:
        # Slow while refusals are recent (the team is at its limit, and with N clients each one
        # hears of only one refusal in N), then faster and faster once they stay away for
        # ``patience`` windows: the others have finished and left room.
        if self._last_throttle is None:
            return 0.0
        quiet_windows = max(0.0, now - self._last_throttle) / self.window
        return self.increase * (1.0 + max(0.0, quiet_windows - self.patience) ** 2)
