from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from airflow_provider_xai_batch.client import Batch, BatchResult, BatchStatus, UploadedFile

TODAY = date(2026, 9, 1)


def batch(**fields: object) -> Batch:
    payload: dict[str, object] = {
        "batch_id": "batch_1",
        "name": "n",
        "create_time": "2026-08-28",
        "expire_time": "2026-09-27",
        "state": {},
    }
    payload.update(fields)
    return Batch.model_validate(payload)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"cancel_by_xai_message": "JSONL file validation failed", "cancel_time": "2026-08-29"},
            BatchStatus.FAILED,
        ),
        (
            {"cancel_time": "2026-08-29", "state": {"num_requests": 3, "num_pending": 1}},
            BatchStatus.CANCELLED,
        ),
        ({"expire_time": "2026-08-31", "state": {"num_requests": 3, "num_pending": 1}}, BatchStatus.EXPIRED),
        (
            {"expire_time": "2026-09-01", "state": {"num_requests": 3, "num_pending": 1}},
            BatchStatus.PROCESSING,
        ),
        (
            {"expire_time": "2026-08-31", "state": {"num_requests": 3, "num_success": 3}},
            BatchStatus.COMPLETED,
        ),
        ({"input_file_id": "file_1", "state": {"num_requests": 0}}, BatchStatus.VALIDATING),
        ({"input_file_id": "file_1", "state": {"num_requests": 2, "num_pending": 2}}, BatchStatus.PROCESSING),
        (
            {"state": {"num_requests": 4, "num_pending": 0, "num_success": 2, "num_error": 2}},
            BatchStatus.COMPLETED,
        ),
        ({"state": {"num_requests": 0}}, BatchStatus.EMPTY),
    ],
)
def test_status_is_derived_in_the_contracts_order(fields: dict[str, object], expected: BatchStatus) -> None:
    assert batch(**fields).status_on(TODAY) is expected


def test_an_empty_inline_batch_is_not_terminal() -> None:
    assert batch().status_on(TODAY) is BatchStatus.EMPTY
    assert not BatchStatus.EMPTY.is_terminal
    assert {s for s in BatchStatus if s.is_terminal} == {
        BatchStatus.COMPLETED,
        BatchStatus.CANCELLED,
        BatchStatus.FAILED,
        BatchStatus.EXPIRED,
    }


def test_times_accept_date_only_rfc3339_and_unix_seconds() -> None:
    b = batch(create_time="2026-08-28T10:11:12.5Z", expire_time="2026-09-27")
    assert b.create_time == datetime(2026, 8, 28, 10, 11, 12, 500000, tzinfo=timezone.utc)
    assert b.expire_time == datetime(2026, 9, 27, tzinfo=timezone.utc)
    f = UploadedFile.model_validate({"id": "file_1", "created_at": 1700000000, "expires_at": None})
    assert f.created_at == datetime.fromtimestamp(1700000000, tz=timezone.utc)


def test_rfc3339_expiry_compares_against_the_current_instant() -> None:
    b = batch(expire_time="2026-09-01T06:00:00Z", state={"num_requests": 1, "num_pending": 1})
    assert b.status_on(TODAY, datetime(2026, 9, 1, 5, tzinfo=timezone.utc)) is BatchStatus.PROCESSING
    assert b.status_on(TODAY, datetime(2026, 9, 1, 7, tzinfo=timezone.utc)) is BatchStatus.EXPIRED


def test_unknown_fields_and_null_counters_are_tolerated() -> None:
    b = batch(cost_breakdown={"total": 3}, state={"num_requests": None, "num_pending": 2})
    assert b.state.num_requests == 0 and b.state.num_pending == 2
    assert b.to_xcom()["cost_breakdown"] == {"total": 3}
    assert b.to_xcom()["status"] == b.status.value


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ({"batch_result": {"error": "Maximum number of tokens"}}, "Maximum number of tokens"),
        ({"batch_result": {"error": {"code": "invalid", "message": "bad model"}}}, "bad model"),
        ({"batch_result": {}, "error_message": "top-level failure"}, "top-level failure"),
        ({"batch_result": {}}, "no result payload"),
    ],
)
def test_every_error_result_variant_reads_as_text(raw: dict[str, object], error: str) -> None:
    result = BatchResult.model_validate({"batch_request_id": "r", **raw})
    assert not result.succeeded
    assert result.error == error
    assert result.cost_in_usd_ticks == 0


def test_success_result_exposes_kind_response_and_cost() -> None:
    result = BatchResult.model_validate(
        {
            "batch_request_id": "r",
            "batch_result": {
                "response": {"chat_get_completion": {"choices": [], "usage": {"cost_in_usd_ticks": 41000}}}
            },
        }
    )
    assert result.succeeded and result.error is None
    assert result.response_kind == "chat_get_completion"
    assert result.cost_in_usd_ticks == 41000


def test_cancelled_results_are_recognised() -> None:
    result = BatchResult.model_validate(
        {"batch_request_id": "r", "batch_result": {"error": "Batch cancelled"}}
    )
    assert result.is_cancelled
