from __future__ import annotations

import pytest

from airflow_provider_xai_batch.emulator import EmulatorConfig, FaultPlan
from airflow_provider_xai_batch.emulator.faults import FaultDecision


def test_scripted_faults_fire_in_order_for_their_route() -> None:
    plan = FaultPlan()
    plan.inject("add_requests", status=503)
    plan.inject("*", drop="before")
    plan.inject("get_batch", latency_ms=50, count=2)
    any_route = plan.decide("get_batch")  # the any-route fault is first in line for get_batch
    assert any_route is not None and any_route.drop == "before"
    first = plan.decide("add_requests")
    assert first is not None and first.status == 503
    slow = [plan.decide("get_batch") for _ in range(2)]
    assert [decision.latency_ms if decision else None for decision in slow] == [50, 50]
    assert plan.decide("get_batch") is None and plan.decide("add_requests") is None
    assert plan.pending() == []


@pytest.mark.parametrize(
    ("route", "kwargs"),
    [
        ("nope", {"status": 500}),
        ("get_batch", {"status": 200}),
        ("get_batch", {"drop": "sideways"}),
        ("get_batch", {}),
        ("get_batch", {"status": 500, "count": 0}),
    ],
)
def test_bad_faults_are_refused(route: str, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FaultPlan().inject(route, **kwargs)  # type: ignore[arg-type]


def test_random_faults_are_deterministic_for_a_seed() -> None:
    def run(seed: int) -> list[FaultDecision | None]:
        plan = FaultPlan(EmulatorConfig(fault_rate=0.5, seed=seed))
        return [plan.decide("get_batch") for _ in range(200)]

    first = run(1)
    assert first == run(1)
    assert first != run(2)
    hits = [decision for decision in first if decision is not None]
    assert 60 < len(hits) < 140
    kinds = {(decision.status, decision.drop, decision.latency_ms > 0) for decision in hits}
    assert (429, None, False) in kinds and (None, "after", False) in kinds and (None, None, True) in kinds


def test_counters() -> None:
    plan = FaultPlan()
    for status in (200, 429, 429):
        plan.record_call("create_batch")
        plan.record_answer("create_batch", status)
    plan.record_call("add_requests")
    plan.record_drop("add_requests")
    assert plan.calls("create_batch") == 3 and plan.calls() == 4
    assert plan.answers(429) == 2 and plan.answers(429, "add_requests") == 0
    stats = plan.stats()
    assert stats["rate_limited"] == 2 and stats["dropped"] == {"add_requests": 1}
    plan.reset()
    assert plan.calls() == 0
