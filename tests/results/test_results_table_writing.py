"""Parquet row groups are written on a thread of their own: in order, and a failure there is the export's."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from test_results_table_pages import chat_page

from airflow_provider_xai_batch.results.result_files import ResultFiles
from airflow_provider_xai_batch.results.staging import OutputFolder, StagedFile, resolve_output_folder
from airflow_provider_xai_batch.results.table import ROW_GROUP_ROWS

LOG = logging.getLogger(__name__)
PAGE_ROWS = 1_000


def export(folder_path: Path, pages: int) -> None:
    folder = OutputFolder(resolve_output_folder(folder_path))
    with ResultFiles(folder, LOG, output_format="parquet") as files:
        for page in range(pages):
            files.write(chat_page(page * PAGE_ROWS, PAGE_ROWS), b"")
        files.close_data()
        files.publish({})


def writer_threads() -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name.startswith("xai-parquet")]


def test_row_groups_written_in_the_background_arrive_whole_and_in_order(tmp_path: Path) -> None:
    pages = 2 * ROW_GROUP_ROWS // PAGE_ROWS + 5

    export(tmp_path / "out", pages)

    parquet = pq.ParquetFile(tmp_path / "out" / "succeeded.parquet")
    ids = parquet.read(columns=["batch_request_id"]).column(0).to_pylist()
    assert ids == [f"r-{i:05d}" for i in range(pages * PAGE_ROWS)]
    assert [parquet.metadata.row_group(g).num_rows for g in range(parquet.metadata.num_row_groups)] == [
        ROW_GROUP_ROWS,
        ROW_GROUP_ROWS,
        5 * PAGE_ROWS,
    ]
    assert writer_threads() == []


def test_a_failed_background_write_fails_the_export_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = StagedFile.write
    written = [0]

    def full_disk(self: StagedFile, data: Any) -> None:
        written[0] += len(data)
        if self.name == "succeeded.parquet" and written[0] > 100_000:
            raise OSError(28, "No space left on device")
        real_write(self, data)

    monkeypatch.setattr(StagedFile, "write", full_disk)

    with pytest.raises(OSError, match="No space left on device"):
        export(tmp_path / "out", 3 * ROW_GROUP_ROWS // PAGE_ROWS)

    assert list((tmp_path / "out").iterdir()) == []
    assert writer_threads() == []
