"""Turning raw result rows into output lines, and checking counts against a batch: no network."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_xai_batch.client import Batch, XAIError
from airflow_provider_xai_batch.results.manifest import reconcile
from airflow_provider_xai_batch.results.metadata import MetadataEntry, MetadataLookup
from airflow_provider_xai_batch.results.rows import RowCounts, decode_page, encode_page_body
from airflow_provider_xai_batch.results.table import read_usual_responses


def success(request_id: str, kind: str = "chat_get_completion", ticks: Any = 100) -> dict[str, Any]:
    return {
        "batch_request_id": request_id,
        "batch_result": {"response": {kind: {"id": request_id, "usage": {"cost_in_usd_ticks": ticks}}}},
    }


def page(*rows: Any) -> bytes:
    return json.dumps({"results": list(rows), "pagination_token": None}).encode()


def encode_page(rows: list[Any], counts: RowCounts) -> tuple[list[bytes], list[bytes]]:
    succeeded, failed = encode_page_body(page(*rows), counts)
    return succeeded.splitlines(), failed.splitlines()


def batch(**state: int) -> Batch:
    return Batch(batch_id="batch_1", create_time="2026-08-28", expire_time="2099-01-01", state=state)


def test_every_known_failure_shape_becomes_a_plain_error_line() -> None:
    counts = RowCounts()
    _, failed = encode_page(
        [
            {
                "batch_request_id": "a",
                "batch_result": {"error": "Maximum number of tokens max_tokens must be positive"},
            },
            {
                "batch_request_id": "b",
                "batch_result": {"error": {"code": "INTERNAL", "message": "model crashed"}},
            },
            {"batch_request_id": "c", "batch_result": {}, "error_message": "timed out"},
            {"batch_request_id": "d", "batch_result": {"error": " batch CANCELLED "}},
            {"batch_request_id": "e", "batch_result": {"error": "Batch cancelled"}},
        ],
        counts,
    )
    assert [json.loads(line) for line in failed] == [
        {"batch_request_id": "a", "error": "Maximum number of tokens max_tokens must be positive"},
        {"batch_request_id": "b", "error": "model crashed"},
        {"batch_request_id": "c", "error": "timed out"},
        {"batch_request_id": "d", "error": " batch CANCELLED "},
        {"batch_request_id": "e", "error": "Batch cancelled"},
    ]
    assert (counts.succeeded, counts.failed, counts.cancelled) == (0, 5, 2)


def test_success_lines_keep_the_payload_kind_and_add_up_the_cost() -> None:
    counts = RowCounts()
    succeeded, failed = encode_page(
        [success("a"), success("b", "image_generation", 2_000_000), success("c", "video_generation", None)],
        counts,
    )
    assert failed == []
    rows = [json.loads(line) for line in succeeded]
    assert [(row["batch_request_id"], row["kind"]) for row in rows] == [
        ("a", "chat_get_completion"),
        ("b", "image_generation"),
        ("c", "video_generation"),
    ]
    assert rows[1]["response"] == {"id": "b", "usage": {"cost_in_usd_ticks": 2_000_000}}
    assert counts.cost_ticks == 2_000_100


def test_lines_are_compact_utf8_json_without_newlines() -> None:
    row = success("ü-1")
    row["batch_result"]["response"]["chat_get_completion"]["text"] = "línea uno\nlínea dos"
    succeeded, _ = encode_page_body(page(row), RowCounts())
    assert succeeded.count(b"\n") == 1 and succeeded.endswith(b"\n")
    assert "ü-1".encode() in succeeded and b", " not in succeeded
    assert json.loads(succeeded)["response"]["text"] == "línea uno\nlínea dos"


def test_a_row_served_twice_across_pages_is_written_once() -> None:
    counts = RowCounts()
    first, _ = encode_page([success("a"), success("b")], counts)
    second, _ = encode_page([success("b"), success("c")], counts)
    assert [json.loads(line)["batch_request_id"] for line in first + second] == ["a", "b", "c"]
    assert counts.duplicates == 1 and counts.succeeded == 3


def test_a_row_without_an_id_is_an_error_not_a_silent_gap() -> None:
    with pytest.raises(XAIError, match="no batch_request_id"):
        encode_page([{"batch_result": {"error": "x"}}], RowCounts())


def test_matching_counts_reconcile() -> None:
    counts = RowCounts(succeeded=8, failed=2, cancelled=1)
    settled = batch(num_requests=10, num_success=8, num_error=1, num_cancelled=1)
    reconciled, expected, notes = reconcile(counts, settled, settled, partial=False)
    assert reconciled and notes == []
    assert expected == {"total": 10, "succeeded": 8, "failed": 2, "cancelled": 1, "pending": 0}


def test_missing_and_extra_rows_are_named() -> None:
    counts = RowCounts(succeeded=7, failed=4, cancelled=2)
    settled = batch(num_requests=10, num_success=8, num_error=1, num_cancelled=1)
    reconciled, _, notes = reconcile(counts, settled, settled, partial=False)
    assert not reconciled
    assert "succeeded: the batch counts 8, 7 written (1 missing)" in notes
    assert "failed: the batch counts 2, 4 written (2 more than counted)" in notes


def test_an_expired_batch_notes_requests_that_never_finished() -> None:
    expired = Batch(
        batch_id="batch_1",
        create_time="2020-01-01",
        expire_time="2020-01-31",
        state={"num_requests": 10, "num_pending": 4, "num_success": 6},
    )
    reconciled, expected, notes = reconcile(RowCounts(succeeded=6), expired, expired, partial=False)
    assert reconciled and expected["pending"] == 4
    assert notes == ["4 requests never finished (batch expired)"]


def test_a_partial_export_only_has_to_lie_between_the_counters_before_and_after() -> None:
    before = batch(num_requests=10, num_pending=8, num_success=2)
    after = batch(num_requests=10, num_pending=3, num_success=7)
    assert reconcile(RowCounts(succeeded=5), before, after, partial=True)[0]
    assert not reconcile(RowCounts(succeeded=9), before, after, partial=True)[0]


def test_odd_pages_give_the_same_lines_as_usual_ones() -> None:
    usual = [success("a"), {"batch_request_id": "b", "batch_result": {"error": "boom"}}, success("c")]
    # A row whose response is not an object sends the whole page down the tolerant path.
    odd = [*usual, {"batch_request_id": "d", "batch_result": {"response": "text"}}]
    fast_ok, fast_failed = encode_page(usual, RowCounts())
    counts = RowCounts()
    slow_ok, slow_failed = encode_page(odd, counts)
    assert slow_ok == fast_ok
    assert slow_failed[:-1] == fast_failed
    assert json.loads(slow_failed[-1]) == {"batch_request_id": "d", "error": "no result payload"}
    assert (counts.succeeded, counts.failed) == (2, 2)


def test_a_row_beyond_recognition_is_still_one_failed_line_and_a_note() -> None:
    counts = RowCounts()
    _, failed = encode_page([success("a"), {"batch_request_id": "b", "batch_result": "garbled"}], counts)
    assert json.loads(failed[0]) == {
        "batch_request_id": "b",
        "error": "unrecognised result: {'batch_request_id': 'b', 'batch_result': 'garbled'}",
    }
    settled = batch(num_requests=2, num_success=1, num_error=1)
    reconciled, _, notes = reconcile(counts, settled, settled, partial=False)
    assert reconciled
    assert notes == ["1 result rows had an unrecognised shape (written to the failed file)"]


def test_an_indented_payload_becomes_one_compact_line() -> None:
    body = b"""{"results": [{"batch_request_id": "a", "batch_result": {"response": {"chat_get_completion": {
        "id": "x",
        "choices": [ {"message": {"content": "two  spaces\\nand an escaped newline"}} ]
    }}}}]}"""
    succeeded, _ = encode_page_body(body, RowCounts())
    assert succeeded == (
        b'{"batch_request_id":"a","kind":"chat_get_completion","response":'
        b'{"id":"x","choices":[{"message":{"content":"two  spaces\\nand an escaped newline"}}]}}\n'
    )


def test_a_page_that_is_not_json_is_an_error() -> None:
    with pytest.raises(XAIError, match="not JSON"):
        encode_page_body(b"<html>bad gateway</html>", RowCounts())


def test_a_payload_that_is_not_an_object_is_wrapped_and_its_page_keeps_every_line_and_metadata() -> None:
    # The page is read again row by row, with the metadata entries already found (the lookup only
    # moves forward).
    entries = [MetadataEntry(name, "chat_get_completion", b'{"n":"%s"}' % name.encode()) for name in "abc"]
    text = {"batch_request_id": "b", "batch_result": {"response": {"chat_get_completion": "plain text"}}}
    counts = RowCounts()
    succeeded, failed = encode_page_body(
        page(success("a", ticks=5), text, success("c", ticks=2.0)), counts, MetadataLookup(iter(entries))
    )
    assert failed == b""
    assert [json.loads(line) for line in succeeded.splitlines()] == [
        {
            "batch_request_id": "a",
            "kind": "chat_get_completion",
            "response": {"id": "a", "usage": {"cost_in_usd_ticks": 5}},
            "metadata": {"n": "a"},
        },
        {
            "batch_request_id": "b",
            "kind": "chat_get_completion",
            "response": {"value": "plain text"},
            "metadata": {"n": "b"},
        },
        {
            "batch_request_id": "c",
            "kind": "chat_get_completion",
            "response": {"id": "c", "usage": {"cost_in_usd_ticks": 2.0}},
            "metadata": {"n": "c"},
        },
    ]
    assert (counts.succeeded, counts.cost_ticks, counts.last_id) == (3, 7, "c")


@pytest.mark.parametrize(
    "odd_usage", [5, "12", {"cost_in_usd_ticks": "12"}, {"cost_in_usd_ticks": True}, None], ids=repr
)
def test_a_cost_of_another_shape_counts_nothing_and_the_others_still_count(odd_usage: Any) -> None:
    odd = success("b")
    odd["batch_result"]["response"]["chat_get_completion"]["usage"] = odd_usage
    for reader in (None, read_usual_responses):
        counts = RowCounts()
        page_lines = decode_page(
            page(success("a", ticks=5), odd, success("c", ticks=7.0)), counts, None, reader
        )
        assert [line.batch_request_id for line in page_lines.succeeded] == ["a", "b", "c"]
        assert counts.cost_ticks == 12


def test_the_parquet_reader_counts_the_same_costs_as_the_jsonl_export() -> None:
    rows = [success(f"r{i}", ticks=i * 3) for i in range(50)] + [success("s", ticks=None)]
    plain, for_tables = RowCounts(), RowCounts()
    lines = decode_page(page(*rows), plain)
    tables = decode_page(page(*rows), for_tables, None, read_usual_responses)
    assert plain == for_tables and plain.cost_ticks == sum(i * 3 for i in range(50))
    assert lines.responses is None and tables.responses is not None and len(tables.responses) == 51
    assert lines.succeeded_lines() == tables.succeeded_lines()
