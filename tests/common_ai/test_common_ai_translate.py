"""The pure half of the common-ai adapter: names, bodies, statuses and results, with no common-ai installed."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from airflow_provider_xai_batch.client import Batch, BatchResult
from airflow_provider_xai_batch.common_ai import translate

KEY = "0123456789abcdef"
FINGERPRINT = "ab" * 32


def batch(
    name: str, *, requests: int, pending: int = 0, created: str = "2026-08-28", **fields: object
) -> Batch:
    return Batch.model_validate(
        {
            "batch_id": "batch_1",
            "name": name,
            "create_time": created,
            "expire_time": "2999-01-01",
            "state": {"num_requests": requests, "num_pending": pending, "num_success": requests - pending},
            **fields,
        }
    )


def test_a_batch_name_carries_key_fingerprint_and_count_and_reads_back() -> None:
    name = translate.batch_name(KEY, FINGERPRINT, 12)
    assert translate.parse_batch_name(name) == translate.BatchIdentity(KEY, FINGERPRINT[:16], 12)
    assert len(name) < 64


@pytest.mark.parametrize(
    "name",
    [
        None,
        "",
        "nightly-eval",
        f"llm-batch-{KEY}-{FINGERPRINT[:16]}",
        f"llm-batch-{KEY}-{FINGERPRINT[:15]}-3",
    ],
)
def test_names_made_elsewhere_carry_no_identity(name: str | None) -> None:
    assert translate.parse_batch_name(name) is None


def test_request_ids_round_trip_to_their_input_position() -> None:
    assert [translate.index_of(translate.request_id(KEY, i)) for i in (0, 7, 10_000)] == [0, 7, 10_000]
    with pytest.raises(ValueError, match="input position"):
        translate.index_of("batch_request_6b1e")


def test_the_body_keeps_user_parameters_but_not_over_the_managed_keys() -> None:
    body = translate.chat_body(
        prompt="Summarise",
        model="grok-4.3",
        system_prompt=None,
        max_tokens=100,
        params={"temperature": 0.1, "messages": [], "max_completion_tokens": 5, "stream": True},
        directive=translate.structured_output_directive("Review", {"type": "object"}),
    )
    assert body == {
        "temperature": 0.1,
        "model": "grok-4.3",
        "messages": [{"role": "user", "content": "Summarise"}],
        "max_tokens": 100,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "Review", "schema": {"type": "object"}, "strict": False},
        },
    }


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"requests": 0}, "in_progress"),
        ({"requests": 4, "pending": 1}, "in_progress"),
        ({"requests": 4}, "completed"),
        ({"requests": 4, "cancel_time": "2026-08-28"}, "cancelled"),
        ({"requests": 4, "cancel_by_xai_message": "bad model"}, "failed"),
        ({"requests": 4, "pending": 2, "expire_time": "2000-01-01"}, "expired"),
    ],
)
def test_statuses_map_to_common_ai_vocabulary(fields: dict[str, object], status: str) -> None:
    assert translate.status_of(batch("b", **fields)) == status  # type: ignore[arg-type]


def test_requests_left_pending_at_expiry_count_as_expired() -> None:
    expired = batch("b", requests=5, pending=2, expire_time="2000-01-01")
    assert translate.counts_of(expired) == {"succeeded": 3, "errored": 0, "expired": 2, "cancelled": 0}


def test_only_a_complete_live_batch_of_the_same_input_is_usable() -> None:
    identity = translate.BatchIdentity(KEY, FINGERPRINT[:16], 3)
    name = translate.batch_name(KEY, FINGERPRINT, 3)
    after = datetime(2026, 8, 28, 0, 2, tzinfo=timezone.utc)
    assert translate.usable_for(batch(name, requests=3), identity, not_before=after)
    # Created the day before a midnight intent: within the clock slack.
    assert translate.usable_for(batch(name, requests=3, created="2026-08-27"), identity, not_before=after)
    assert not translate.usable_for(batch(name, requests=3, created="2026-08-20"), identity, not_before=after)
    assert not translate.usable_for(batch(name, requests=2), identity, not_before=None)
    assert not translate.usable_for(
        batch(name, requests=3, cancel_time="2026-08-28"), identity, not_before=None
    )
    other = translate.batch_name(KEY, "cd" * 32, 3)
    assert not translate.usable_for(batch(other, requests=3), identity, not_before=None)


def test_results_read_as_text_usage_and_cost_or_as_the_error() -> None:
    ok = BatchResult.model_validate(
        {
            "batch_request_id": f"{KEY}-0",
            "batch_result": {
                "response": {
                    "chat_get_completion": {
                        "model": "grok-4.3",
                        "choices": [{"message": {"content": "Fine"}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 7, "completion_tokens": 2, "cost_in_usd_ticks": 1500},
                    }
                }
            },
        }
    )
    failed = BatchResult.model_validate({"batch_request_id": f"{KEY}-1", "batch_result": {"error": "bad"}})
    cancelled = BatchResult.model_validate(
        {"batch_request_id": f"{KEY}-2", "batch_result": {"error": "Batch cancelled"}}
    )
    assert translate.chat_outcome(ok) == translate.ChatOutcome(
        "success",
        "Fine",
        "grok-4.3",
        {"input_tokens": 7, "output_tokens": 2, "cost_in_usd_ticks": 1500},
        "stop",
        None,
    )
    assert (translate.chat_outcome(failed).status, translate.chat_outcome(failed).error) == ("errored", "bad")
    assert translate.chat_outcome(cancelled).status == "cancelled"
