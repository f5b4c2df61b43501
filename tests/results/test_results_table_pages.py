"""Parquet pages: the usual chat page (read a column at a time) gives the rows a row-by-row reading gives.

A page the export decoded (:func:`~airflow_provider_xai_batch.results.rows.decode_page`) goes into the
tables without being read again; the tables must be those its JSONL lines give.

A page of the usual shapes takes the column-wise path; one odd row anywhere in a page sends the whole
page the row-by-row way. The same rows written both ways must read back identical, metadata, attempts,
explicit nulls and escaped text included.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from airflow_provider_xai_batch.results.metadata import MetadataEntry, MetadataLookup
from airflow_provider_xai_batch.results.result_files import ResultFiles
from airflow_provider_xai_batch.results.rows import RowCounts, decode_page, encode_page_body
from airflow_provider_xai_batch.results.staging import OutputFolder, resolve_output_folder
from airflow_provider_xai_batch.results.table import read_usual_responses

LOG = logging.getLogger(__name__)
CHAT = (
    '{"batch_request_id":"r-%05d","kind":"chat_get_completion","response":{"model":"grok-4.3",'
    '"choices":[{"index":0,"message":{"role":"assistant","content":"Yes \\"q\\" \\u00e9 %d"},'
    '"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":%d,"cost_in_usd_ticks":%d%s}}%s}\n'
)
# A row only the row-by-row reading takes (content as a list of parts); added to a page, it sends
# every row of that page that way.
ODD = b'{"batch_request_id":"z-odd","kind":"chat_get_completion","response":{"choices":[{"message":{"content":[1]}}]}}\n'
NULLS = (
    b'{"batch_request_id":"u1","kind":"chat_get_completion","response":{"model":null,"choices":null,"usage":null}}\n'
    b'{"batch_request_id":"u2","kind":"chat_get_completion","response":{"choices":[{"message":null,'
    b'"finish_reason":"length"}],"usage":{"completion_tokens_details":null,"prompt_tokens":3}},'
    b'"attempts":null,"metadata":null}\n'
    b'{"batch_request_id":"u3","kind":null,"response":{"choices":[{"message":{"content":null}}],'
    b'"usage":{"completion_tokens_details":{}}}}\n'
)


def chat_page(start: int, count: int) -> bytes:
    lines = []
    for i in range(start, start + count):
        details = f',"completion_tokens_details":{{"reasoning_tokens":{i}}}' if i % 4 == 0 else ""
        extra = f',"metadata":{{"doc":{i},"lang":"fr é"}}' if i % 3 == 0 else ""
        extra += ',"attempts":2' if i % 2 else ""
        lines.append(CHAT % (i, i, i % 5, i * 7, details, extra))
    return "".join(lines).encode()


def table_rows(tmp_path: Path, name: str, pages: list[bytes]) -> tuple[list[dict[str, Any]], int]:
    folder = OutputFolder(resolve_output_folder(tmp_path / name))
    with ResultFiles(folder, LOG, output_format="parquet") as files:
        for page in pages:
            files.write(page, b"")
        files.close_data()
        files.publish({})
    parquet = pq.ParquetFile(tmp_path / name / "succeeded.parquet")
    return parquet.read().to_pylist(), parquet.metadata.num_row_groups


def without(rows: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    return [row for row in rows if row["batch_request_id"] != request_id]


def test_a_usual_page_reads_back_as_the_row_by_row_path_reads_it(tmp_path: Path) -> None:
    pages = [chat_page(0, 40), chat_page(40, 40) + NULLS, chat_page(80, 40)]
    column_wise, _ = table_rows(tmp_path, "columns", pages)
    row_by_row, _ = table_rows(tmp_path, "rows", [page + ODD for page in pages])
    assert without(row_by_row, "z-odd") == column_wise
    first = column_wise[0]
    assert first["text"] == 'Yes "q" é 0'
    assert first["metadata"] == '{"doc":0,"lang":"fr é"}'
    assert first["reasoning_tokens"] == 0
    assert first["media_uris"] == []
    assert column_wise[1]["metadata"] is None
    assert column_wise[1]["attempts"] == 2
    assert [row["batch_request_id"] for row in column_wise][:3] == ["r-00000", "r-00001", "r-00002"]
    u1 = next(row for row in column_wise if row["batch_request_id"] == "u1")
    assert u1["response"] == '{"model":null,"choices":null,"usage":null}'
    assert (u1["model"], u1["text"], u1["prompt_tokens"]) == (None, None, None)


def test_a_page_without_metadata_has_a_null_metadata_column(tmp_path: Path) -> None:
    page = b"".join(
        b'{"batch_request_id":"a%d","kind":"chat_get_completion","response":{"choices":[]}}\n' % i
        for i in range(5)
    )
    rows, groups = table_rows(tmp_path, "plain", [page])
    assert [row["metadata"] for row in rows] == [None] * 5
    assert [row["response"] for row in rows] == ['{"choices":[]}'] * 5
    assert groups == 1


def service_page(start: int, count: int, *extra: dict[str, Any]) -> bytes:
    """A page as the service sends it: usual chat results, one in ten failed, then ``extra`` rows."""
    rows: list[dict[str, Any]] = []
    for i in range(start, start + count):
        request_id = f"r-{i:05d}"
        if i % 10 == 7:
            rows.append({"batch_request_id": request_id, "batch_result": {"error": f"failed {i}"}})
            continue
        usage: dict[str, Any] = {"prompt_tokens": 12, "completion_tokens": i % 5, "cost_in_usd_ticks": i * 7}
        if i % 4 == 0:
            usage["completion_tokens_details"] = {"reasoning_tokens": i}
        response = {
            "model": "grok-4.3",
            "choices": [{"index": 0, "message": {"content": f'Yes "q" é {i}'}, "finish_reason": "stop"}],
            "usage": usage,
        }
        rows.append(
            {"batch_request_id": request_id, "batch_result": {"response": {"chat_get_completion": response}}}
        )
    return json.dumps({"results": rows + list(extra)}).encode()


def sidecar(count: int) -> list[MetadataEntry]:
    return [
        MetadataEntry(
            f"r-{i:05d}", "chat_get_completion", b'{"doc":%d,"lang":"fr \xc3\xa9"}' % i if i % 3 else None
        )
        for i in range(count)
    ]


def exported_tables(
    tmp_path: Path, name: str, bodies: list[bytes], *, decoded: bool
) -> tuple[Any, Any, RowCounts]:
    """Both tables of ``bodies`` exported one way: from the decoded pages, or from their JSONL lines."""
    folder = OutputFolder(resolve_output_folder(tmp_path / name))
    counts = RowCounts()
    lookup = MetadataLookup(iter(sidecar(200)))
    with ResultFiles(folder, LOG, output_format="parquet") as files:
        for body in bodies:
            if decoded:
                files.write_page(decode_page(body, counts, lookup, files.payload_reader))
            else:
                files.write(*encode_page_body(body, counts, lookup))
        files.close_data()
        files.publish({})
    return (
        pq.read_table(tmp_path / name / "succeeded.parquet"),
        pq.read_table(tmp_path / name / "failed.parquet"),
        counts,
    )


RESPONSES_API = {
    "batch_request_id": "z-responses",
    "batch_result": {
        "response": {
            "responses": {
                "model": "grok-4.3",
                "status": "completed",
                "output": [{"content": [{"text": "Hello"}]}],
                "usage": {"input_tokens": 3, "output_tokens": 1, "cost_in_usd_ticks": 4},
            }
        }
    },
}
NOT_AN_OBJECT = {"batch_request_id": "z-text", "batch_result": {"response": {"chat_get_completion": "plain"}}}


def test_decoded_pages_give_the_tables_their_jsonl_lines_give(tmp_path: Path) -> None:
    # The first and last pages are of the usual shapes (read column-wise, straight from the decoded
    # page); the middle ones hold a row of another shape each, which sends them the row-by-row way.
    bodies = [
        service_page(0, 60),
        service_page(60, 40, RESPONSES_API),
        service_page(100, 40, NOT_AN_OBJECT),
        service_page(150, 50),
    ]
    read = [decode_page(body, RowCounts(), None, read_usual_responses).responses for body in bodies]
    assert [responses is not None for responses in read] == [True, False, False, True]
    from_pages = exported_tables(tmp_path, "pages", bodies, decoded=True)
    from_lines = exported_tables(tmp_path, "lines", bodies, decoded=False)
    assert from_pages[0].equals(from_lines[0]) and from_pages[0].schema == from_lines[0].schema
    assert from_pages[1].equals(from_lines[1])
    assert from_pages[2] == from_lines[2]
    succeeded = {row["batch_request_id"]: row for row in from_pages[0].to_pylist()}
    failed = {row["batch_request_id"]: row for row in from_pages[1].to_pylist()}
    assert succeeded["r-00001"]["metadata"] == '{"doc":1,"lang":"fr é"}'
    assert succeeded["r-00003"]["metadata"] is None
    assert (succeeded["r-00004"]["text"], succeeded["r-00004"]["reasoning_tokens"]) == ('Yes "q" é 4', 4)
    assert succeeded["r-00005"]["reasoning_tokens"] is None
    assert succeeded["r-00005"]["cost_usd_ticks"] == 35
    assert succeeded["z-responses"]["text"] == "Hello"
    assert succeeded["z-text"]["response"] == '{"value":"plain"}'
    assert failed["r-00017"] == {
        "batch_request_id": "r-00017",
        "kind": "chat_get_completion",
        "error": "failed 17",
        "metadata": '{"doc":17,"lang":"fr é"}',
        "attempts": None,
    }
    assert (
        from_pages[2].cost_ticks == sum(i * 7 for i in range(200) if i % 10 != 7 and not 140 <= i < 150) + 4
    )
