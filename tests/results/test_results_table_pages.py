"""Parquet pages: the usual chat page (read a column at a time) gives the rows a row-by-row reading gives.

A page of the usual shapes takes the column-wise path; one odd row anywhere in a page sends the whole
page the row-by-row way. The same rows written both ways must read back identical, metadata, attempts,
explicit nulls and escaped text included.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from airflow_provider_xai_batch.results.result_files import ResultFiles
from airflow_provider_xai_batch.results.staging import OutputFolder, resolve_output_folder

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
