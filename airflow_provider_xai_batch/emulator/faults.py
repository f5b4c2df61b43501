"""Trouble on demand: scripted faults for one route, random faults at a rate, and call counters.

Kept apart from the state machine: a fault decides what happens to a call on the wire (an error
status, a dropped connection, extra latency); the service never knows it happened.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from airflow_provider_xai_batch.emulator.config import EmulatorConfig

ROUTES: tuple[str, ...] = (
    "create_batch",
    "list_batches",
    "get_batch",
    "add_requests",
    "list_requests",
    "list_results",
    "cancel_batch",
    "upload_file",
    "list_files",
    "get_file",
    "delete_file",
    "file_content",
    "media_file",
)
ANY_ROUTE = "*"

Drop = Literal["before", "after"]


@dataclass(frozen=True)
class FaultDecision:
    """What to do to one call: answer ``status`` instead, drop the connection, and/or wait first."""

    status: int | None = None
    drop: Drop | None = None
    latency_ms: float = 0.0
    injected: bool = True


@dataclass
class _Scripted:
    route: str
    decision: FaultDecision
    remaining: int


class FaultPlan:
    """Faults to inject into upcoming calls, plus counts of what every route was asked and answered.

    ``drop="before"`` closes the connection without applying the call; ``drop="after"`` applies it
    to the state, then closes the connection without answering (the client cannot know it worked).

    >>> plan = FaultPlan()
    >>> plan.inject("add_requests", status=503, count=2)
    >>> [plan.decide("add_requests").status for _ in range(2)], plan.decide("add_requests")
    ([503, 503], None)
    >>> plan.decide("get_batch") is None
    True
    """

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config if config is not None else EmulatorConfig()
        self._lock = threading.Lock()
        self._scripted: list[_Scripted] = []
        self._draws = 0
        self._calls: Counter[str] = Counter()
        self._answers: Counter[tuple[str, int]] = Counter()
        self._dropped: Counter[str] = Counter()
        self._injected = 0

    def inject(
        self,
        route: str,
        *,
        status: int | None = None,
        drop: Drop | None = None,
        latency_ms: float = 0,
        count: int = 1,
    ) -> None:
        """Make the next ``count`` calls of ``route`` (``"*"`` for any) misbehave."""
        if route != ANY_ROUTE and route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; known: {', '.join(ROUTES)} or '*'")
        if status is not None and (isinstance(status, bool) or not 400 <= status <= 599):
            raise ValueError("status must be an HTTP error status (400-599)")
        if drop not in (None, "before", "after"):
            raise ValueError("drop must be 'before' or 'after'")
        if latency_ms < 0:
            raise ValueError("latency_ms must not be negative")
        if status is None and drop is None and latency_ms == 0:
            raise ValueError("a fault needs a status, a drop or a latency")
        if count < 1:
            raise ValueError("count must be at least 1")
        decision = FaultDecision(status=status, drop=drop, latency_ms=float(latency_ms))
        with self._lock:
            self._scripted.append(_Scripted(route, decision, count))

    def clear(self) -> None:
        """Forget the scripted faults that have not fired yet."""
        with self._lock:
            self._scripted.clear()

    def reset(self) -> None:
        """Forget scripted faults and every counter."""
        with self._lock:
            self._scripted.clear()
            self._draws = 0
            self._calls.clear()
            self._answers.clear()
            self._dropped.clear()
            self._injected = 0

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "route": item.route,
                    "status": item.decision.status,
                    "drop": item.decision.drop,
                    "latency_ms": item.decision.latency_ms,
                    "count": item.remaining,
                }
                for item in self._scripted
            ]

    def decide(self, route: str) -> FaultDecision | None:
        """The fault for this call of ``route``, if any: scripted ones first, then the random rate."""
        with self._lock:
            for item in self._scripted:
                if item.route in (route, ANY_ROUTE):
                    item.remaining -= 1
                    if item.remaining <= 0:
                        self._scripted.remove(item)
                    self._injected += 1
                    return item.decision
            return self._random_fault()

    def _random_fault(self) -> FaultDecision | None:
        rate, kinds = self.config.fault_rate, self.config.fault_kinds
        if rate <= 0 or not kinds:
            return None
        self._draws += 1
        # Draws hash the seed and a call counter, so a run with the same calls meets the same faults.
        digest = hashlib.blake2b(
            f"{self.config.seed}\0fault\0{self._draws}".encode(), digest_size=16
        ).digest()
        if int.from_bytes(digest[:8], "big") / 2**64 >= rate:
            return None
        kind = kinds[int.from_bytes(digest[8:], "big") % len(kinds)]
        self._injected += 1
        if kind == "drop_before":
            return FaultDecision(drop="before", injected=False)
        if kind == "drop_after":
            return FaultDecision(drop="after", injected=False)
        if kind == "slow":
            return FaultDecision(latency_ms=self.config.slow_ms, injected=False)
        return FaultDecision(status=int(kind), injected=False)

    # -- counters --------------------------------------------------------------------------------

    def record_call(self, route: str) -> None:
        with self._lock:
            self._calls[route] += 1

    def record_answer(self, route: str, status: int) -> None:
        with self._lock:
            self._answers[(route, status)] += 1

    def record_drop(self, route: str) -> None:
        with self._lock:
            self._dropped[route] += 1

    def calls(self, route: str | None = None) -> int:
        """Calls received for ``route`` (all routes when ``None``), answered or not."""
        with self._lock:
            return self._calls[route] if route is not None else sum(self._calls.values())

    def answers(self, status: int, route: str | None = None) -> int:
        """Answers sent with ``status``, for one route or all."""
        with self._lock:
            return sum(
                n for (name, code), n in self._answers.items() if code == status and route in (None, name)
            )

    def dropped(self, route: str | None = None) -> int:
        with self._lock:
            return self._dropped[route] if route is not None else sum(self._dropped.values())

    def stats(self) -> dict[str, Any]:
        """Everything counted, JSON-ready."""
        with self._lock:
            by_status: Counter[str] = Counter()
            by_route: dict[str, dict[str, int]] = {}
            for (route, status), n in sorted(self._answers.items()):
                by_status[str(status)] += n
                by_route.setdefault(route, {})[str(status)] = n
            return {
                "calls": dict(sorted(self._calls.items())),
                "answers": dict(sorted(by_status.items())),
                "answers_by_route": by_route,
                "dropped": dict(sorted(self._dropped.items())),
                "rate_limited": by_status.get("429", 0),
                "faults_fired": self._injected,
                "faults_pending": sum(item.remaining for item in self._scripted),
            }
