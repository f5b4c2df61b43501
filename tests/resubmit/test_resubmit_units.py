"""Which errors are resent, what a round resends, and how rounds merge: pure, no network."""

from __future__ import annotations

import pytest

from airflow_provider_xai_batch.emulator.state import CANCELLED_ERROR, PROCESSING_ERROR
from airflow_provider_xai_batch.resubmit import RoundRow, is_passing_error, merge_rounds, plan_resend
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
