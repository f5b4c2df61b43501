"""Rolling-window rate limits of the routes the service limits (batch creation, adding requests)."""

from __future__ import annotations

from collections import deque

from airflow_provider_xai_batch.emulator.config import EmulatorConfig
from airflow_provider_xai_batch.emulator.errors import resource_exhausted as rate_limited

RATE_LIMITED_ROUTES = ("create_batch", "add_requests")


class RateWindows:
    """One window of recent call times per limited route.

    >>> windows = RateWindows()
    >>> config = EmulatorConfig(create_rate_limit=1, create_rate_window_seconds=10)
    >>> windows.consume(config, "create_batch", now=0.0)
    >>> windows.consume(config, "create_batch", now=10.0)  # the first call has left the window
    """

    def __init__(self) -> None:
        self._calls: dict[str, deque[float]] = {route: deque() for route in RATE_LIMITED_ROUTES}

    def clear(self) -> None:
        """Forget every call counted so far."""
        for calls in self._calls.values():
            calls.clear()

    def consume(self, config: EmulatorConfig, route: str, now: float) -> None:
        """Count one call of ``route`` at ``now``; 429 when its window is full."""
        if route == "create_batch":
            limit, window = config.create_rate_limit, config.create_rate_window_seconds
        elif route == "add_requests":
            limit, window = config.add_rate_limit, config.add_rate_window_seconds
        else:
            return
        if limit <= 0:
            return
        calls = self._calls[route]
        while calls and calls[0] <= now - window:
            calls.popleft()
        if len(calls) >= limit:
            # Refused calls do not count, so a client backing off gets through once the window slides.
            raise rate_limited()
        calls.append(now)
