"""Which errors are resent, what a round resends, and how rounds merge: pure, no network."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_xai_batch.emulator.state import CANCELLED_ERROR, PROCESSING_ERROR
from airflow_provider_xai_batch.resubmit import (
    ResubmitPolicy,
    RoundRow,
    RoundsPlan,
    is_passing_error,
    merge_rounds,
    plan_resend,
)
from airflow_provider_xai_batch.resubmit.merge import ResultsOutOfOrderError


@pytest.mark.parametrize(
    "error",
    [
        PROCESSING_ERROR,
        "Internal server error",
        "The service is temporarily at capacity. Please try again later.",
        "Rate limit exceeded",
        "Some resource has been exhausted",
        "upstream request timed out",
        "Deadline Exceeded",
        "Service Unavailable",
    ],
)
def test_service_side_trouble_is_passing(error: str) -> None:
    assert is_passing_error(error)


@pytest.mark.parametrize(
    "error",
    [
        CANCELLED_ERROR,
        "Maximum number of tokens max_tokens must be positive but max_tokens = -5",
        "Model grok-x is not supported for batch processing.",
        "Request failed while processing: the prompt contains [[fail]]",
        "Invalid request content: messages must be a non-empty list",
        "Your team has reached its spending limit; the service is temporarily refusing requests",
        "",
        "something nobody has seen before",
    ],
)
def test_errors_a_retry_cannot_fix_are_never_resent(error: str) -> None:
    assert not is_passing_error(error)


def test_a_round_resends_only_what_the_policy_accepts() -> None:
    outcomes = [
        ("a", None),
        ("b", PROCESSING_ERROR),
        ("c", "max_tokens must be positive"),
        ("d", PROCESSING_ERROR),
    ]
    plan = plan_resend(outcomes)
    assert (plan.resend, plan.failed_for_good, plan.succeeded) == ({"b", "d"}, 1, 1)
    everything = plan_resend(outcomes, policy=lambda error: True)
    assert everything.resend == {"b", "c", "d"}


def test_the_latest_round_wins_and_attempts_count_the_rounds_a_request_was_in() -> None:
    rounds = [
        [RoundRow(i, 0, f"{i}@0") for i in ("a", "b", "c", "d")],
        [RoundRow(i, 1, f"{i}@1") for i in ("b", "d")],
        [RoundRow("d", 2, "d@2")],
    ]
    merged = [(o.request_id, o.row, o.attempts, o.round_number) for o in merge_rounds(rounds)]
    assert merged == [("a", "a@0", 1, 0), ("b", "b@1", 2, 1), ("c", "c@0", 1, 0), ("d", "d@2", 3, 2)]


def test_a_row_served_twice_counts_once_and_disorder_is_refused() -> None:
    twice = [[RoundRow("a", 0, 1), RoundRow("a", 0, 1), RoundRow("b", 0, 2)]]
    assert [(o.request_id, o.attempts) for o in merge_rounds(twice)] == [("a", 1), ("b", 1)]
    with pytest.raises(ResultsOutOfOrderError, match="not sorted"):
        list(merge_rounds([[RoundRow("b", 0, 1), RoundRow("a", 0, 2)]]))


def _chat_row(request_id: str, text: str) -> dict[str, object]:
    body = {"model": "grok-4.3", "messages": [{"role": "user", "content": text}]}
    return {"batch_request_id": request_id, "batch_request": {"chat_get_completion": body}}


def test_the_emulator_fails_a_transient_marker_once_then_lets_it_succeed_in_a_later_batch() -> None:
    from airflow_provider_xai_batch.emulator.clock import ManualClock
    from airflow_provider_xai_batch.emulator.config import EmulatorConfig
    from airflow_provider_xai_batch.emulator.state import BatchService

    service = BatchService(EmulatorConfig(create_rate_limit=0), ManualClock(1_788_000_000))
    rows = [_chat_row("t", "[[fail-transient]] busy"), _chat_row("p", "[[fail]] broken")]

    def errors(batch_id: str) -> dict[str, object]:
        results = service.list_results(batch_id)["results"]
        return {row["batch_request_id"]: row["batch_result"].get("error") for row in results}

    first = service.create_batch("first")["batch_id"]
    service.add_requests(first, rows)
    service.add_requests(first, rows)  # an identical re-add is a no-op: it does not use up the failure
    assert errors(first) == {
        "t": PROCESSING_ERROR,
        "p": "Request failed while processing: the prompt contains [[fail]]",
    }
    second = service.create_batch("second")["batch_id"]
    service.add_requests(second, rows)
    assert errors(second) == {"t": None, "p": "Request failed while processing: the prompt contains [[fail]]"}
    assert is_passing_error(str(errors(first)["t"])) and not is_passing_error(str(errors(second)["p"]))


def test_the_rounds_plan_stops_at_the_limit_without_reading_more_outcomes() -> None:
    plan = RoundsPlan("nightly", ResubmitPolicy(rounds=1), ["b0"])
    step = plan.next_round([("a", None), ("b", PROCESSING_ERROR), ("c", "max_tokens must be positive")])
    assert step is not None
    assert (step.number, step.name, step.state_key) == (1, "nightly-round-1", "xai_batch_id_round_1")
    assert (step.resend, step.failed_for_good) == (frozenset({"b"}), 1)
    plan.started("b1")

    def never_read() -> Iterator[tuple[str, str | None]]:
        raise AssertionError("the outcomes of the last allowed round were read")
        yield  # pragma: no cover

    assert not plan.more_allowed and plan.next_round(never_read()) is None
    assert plan.rounds == ["b0", "b1"]


def test_the_rounds_plan_stops_when_nothing_passing_is_left() -> None:
    plan = RoundsPlan("n", ResubmitPolicy(rounds=3, retry_if=lambda error: error == "again"), ["b0", "b1"])
    assert plan.next_round([("a", "never"), ("b", None)]) is None
    assert plan.failed_for_good == 1
    step = plan.next_round([("a", "again")])
    assert step is not None and step.number == 2 and step.resend == {"a"}


@pytest.mark.parametrize("rounds", [-1, True, 1.5])
def test_a_resubmit_policy_refuses_a_round_count_that_is_not_a_whole_number(rounds: object) -> None:
    with pytest.raises(ValueError, match="whole number"):
        ResubmitPolicy(rounds=rounds)  # type: ignore[arg-type]


def test_a_deferral_carries_the_rounds_and_the_deadline_of_the_whole_task(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow.providers.common.compat.sdk import TaskDeferred

    from airflow_provider_xai_batch.operators import one_task
    from airflow_provider_xai_batch.waiting import DEFERRAL_GRACE_SECONDS

    monkeypatch.setattr(one_task, "wall_clock", lambda: 1_000.0)
    op = one_task.XAIBatchOperator(
        task_id="run", name="n", requests=[], deferrable=True, timeout=600, resubmit=ResubmitPolicy(rounds=2)
    )
    with pytest.raises(TaskDeferred) as deferred:
        op._defer(["b0", "b1"], end_time=1_400.0)
    assert deferred.value.kwargs == {"rounds": ["b0", "b1"], "end_time": 1_400.0}
    assert deferred.value.trigger.batch_id == "b1" and deferred.value.trigger.end_time == 1_400.0
    # Airflow's backstop counts from now: what is left of the task's time, not a fresh timeout.
    assert deferred.value.timeout is not None
    assert deferred.value.timeout.total_seconds() == 400.0 + DEFERRAL_GRACE_SECONDS
