"""Adaptive pacing of add calls: independent clients share one team limit, on a simulated clock.

The service is simulated exactly as xAI (and the emulator) count: at most ``limit`` accepted calls
in any rolling ``window``; refused calls do not count. Each client sends one call at a time, as
an add task does, and retries a refused call after the client's own retry backoff.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import dataclass, field

import pytest

from airflow_provider_xai_batch.client.pacing import SharedWindowPacer
from airflow_provider_xai_batch.client.policy import RetryPolicy, SlidingWindowLimiter

LIMIT = 50
WINDOW = 5.0


@dataclass
class Outcome:
    accepted: list[float] = field(default_factory=list)
    refused: int = 0
    lost: int = 0
    per_client: list[int] = field(default_factory=list)

    def rate_fraction(self, start: float, end: float) -> float:
        """Accepted calls between ``start`` and ``end`` as a fraction of what the limit allows."""
        inside = sum(1 for moment in self.accepted if start <= moment < end)
        return inside / ((end - start) * LIMIT / WINDOW)

    @property
    def refused_share(self) -> float:
        return self.refused / (self.refused + len(self.accepted))


def share_limit(
    pacers: list[SharedWindowPacer] | list[SlidingWindowLimiter],
    *,
    until: float,
    seed: int = 0,
    starts: list[float] | None = None,
    stops: list[float] | None = None,
) -> Outcome:
    """Run clients against one simulated team window until ``until`` (simulated seconds)."""
    rng = random.Random(seed)
    policy = RetryPolicy(jitter=lambda delay: delay * rng.uniform(0.5, 1.0))
    window: deque[float] = deque()
    outcome = Outcome(per_client=[0] * len(pacers))
    starts = starts or [rng.uniform(0.0, 0.2) for _ in pacers]
    stops = stops or [until] * len(pacers)
    # (time, client, attempt, booked): a client first books a slot, then sends at that slot.
    events = [(start, index, 0, False) for index, start in enumerate(starts)]
    heapq.heapify(events)
    while events:
        now, index, attempt, booked = heapq.heappop(events)
        if now >= stops[index]:
            continue
        pacer = pacers[index]
        if not booked:
            heapq.heappush(events, (now + pacer.reserve(now), index, attempt, True))
            continue
        while window and window[0] <= now - WINDOW:
            window.popleft()
        latency = rng.uniform(0.002, 0.02)
        if len(window) >= LIMIT:
            outcome.refused += 1
            if isinstance(pacer, SharedWindowPacer):
                pacer.throttled(now)
            delay = policy.retry_delay(attempt, status_code=429)
            if delay is None:  # out of retries: the task fails, its call is lost
                outcome.lost += 1
                heapq.heappush(events, (now + latency, index, 0, False))
            else:
                heapq.heappush(events, (now + latency + delay, index, attempt + 1, False))
        else:
            window.append(now)
            outcome.accepted.append(now)
            outcome.per_client[index] += 1
            heapq.heappush(events, (now + latency, index, 0, False))
    return outcome


def test_a_lone_client_uses_the_whole_limit_and_is_never_refused() -> None:
    outcome = share_limit([SharedWindowPacer(LIMIT, WINDOW)], until=15 * WINDOW)
    assert outcome.refused == 0
    assert outcome.rate_fraction(WINDOW, 15 * WINDOW) >= 0.97


def test_a_lone_client_never_sends_more_than_the_limit_in_any_window() -> None:
    pacer = SharedWindowPacer(limit=10, window=1.0, margin=0.0)
    slots: list[float] = []
    now = 0.0
    for _ in range(100):
        now += pacer.reserve(now)
        slots.append(now)
    for index, slot in enumerate(slots):
        assert sum(1 for other in slots[index:] if other < slot + 1.0) <= 10


@pytest.mark.parametrize("clients", [2, 4, 8])
def test_independent_clients_converge_to_the_shared_limit(clients: int) -> None:
    for seed in range(3):
        pacers = [SharedWindowPacer(LIMIT, WINDOW) for _ in range(clients)]
        outcome = share_limit(pacers, until=15 * WINDOW, seed=seed)
        assert outcome.rate_fraction(WINDOW, 15 * WINDOW) >= 0.85
        assert outcome.refused_share <= 0.02
        assert outcome.lost == 0
        # Each client got a real share, none was starved.
        assert min(outcome.per_client) >= 0.3 * len(outcome.accepted) / clients


def test_clients_pacing_alone_meet_a_storm_of_refusals() -> None:
    # What each client did before: pace to the whole limit as if alone.
    limiters = [SlidingWindowLimiter(LIMIT, WINDOW) for _ in range(4)]
    outcome = share_limit(limiters, until=15 * WINDOW)
    assert outcome.refused_share > 0.05


def test_a_refusal_shrinks_the_quota_to_a_fraction_of_what_got_through() -> None:
    pacer = SharedWindowPacer(limit=10, window=10.0, margin=0.0, decrease=0.5)
    for _ in range(5):
        pacer.reserve(now=0.0)
    pacer.throttled(now=5.0)  # the fifth call was refused: four went through in the window
    assert pacer.quota == 2.0
    assert pacer.throttles == 1
    # Its own four calls sit in the window (at 0, 1, 2 and 3 s): the next waits until only one does.
    assert pacer.reserve(now=5.0) == pytest.approx(12.0 - 5.0)


def test_refusals_soon_after_a_decrease_do_not_shrink_the_quota_again() -> None:
    pacer = SharedWindowPacer(limit=10, window=10.0, margin=0.0, decrease=0.5)
    for _ in range(5):
        pacer.reserve(now=0.0)
    pacer.throttled(now=5.0)
    pacer.reserve(now=6.0)
    pacer.throttled(now=13.0)
    assert pacer.quota >= 2.0
    assert pacer.throttles == 2


def test_a_client_left_alone_climbs_back_to_the_whole_limit() -> None:
    pacers = [SharedWindowPacer(LIMIT, WINDOW) for _ in range(4)]
    # Four share the limit for 10 windows; then three finish and one carries on alone.
    stops = [10 * WINDOW] * 3 + [60 * WINDOW]
    outcome = share_limit(pacers, until=60 * WINDOW, stops=stops)
    assert pacers[3].quota == LIMIT
    assert outcome.rate_fraction(50 * WINDOW, 60 * WINDOW) >= 0.97


def test_a_client_that_joins_a_full_window_gets_in_and_nothing_is_lost() -> None:
    pacers = [SharedWindowPacer(LIMIT, WINDOW) for _ in range(2)]
    outcome = share_limit(pacers, until=30 * WINDOW, starts=[0.0, 4 * WINDOW])
    assert outcome.rate_fraction(5 * WINDOW, 30 * WINDOW) >= 0.85
    assert outcome.refused_share <= 0.02
    assert outcome.lost == 0
    assert outcome.per_client[1] > 0


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        SharedWindowPacer(limit=0, window=1.0)
    with pytest.raises(ValueError):
        SharedWindowPacer(limit=1, window=1.0, decrease=1.0)


def test_a_slow_sender_refused_once_keeps_a_useful_share() -> None:
    # Two large calls per 30 s window, then one 429 that was not about the shared window (the
    # service at capacity): the next call must not wait for the whole window to pass.
    pacer = SharedWindowPacer(limit=1000, window=30.0)
    assert pacer.reserve(now=0.0) == 0.0
    assert pacer.reserve(now=10.0) == 0.0
    pacer.throttled(now=10.0)

    assert pacer.quota == 1000 / 16
    assert pacer.reserve(now=10.0) < 1.0  # 30 s / 62.5: about half a second, not 20 s
