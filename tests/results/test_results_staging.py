"""Staged files: what is written while a local file grows is handed to the disk as it goes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_xai_batch.results import staging
from airflow_provider_xai_batch.results.staging import OutputFolder, StagedFile, resolve_output_folder

PIECE = b"x" * 1_000_000


def write_pieces(tmp_path: Path, count: int) -> StagedFile:
    folder = OutputFolder(resolve_output_folder(str(tmp_path)))
    staged = StagedFile(folder, "succeeded.jsonl", "0123456789ab")
    for _ in range(count):
        staged.write(PIECE)
    staged.publish()
    return staged


def test_a_growing_file_is_written_back_in_pieces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ranges: list[tuple[int, int]] = []
    real = staging._start_writeback

    def noted(handle: Any, offset: int, length: int) -> bool:
        ranges.append((offset, length))
        return real(handle, offset, length)

    monkeypatch.setattr(staging, "_WRITEBACK_BYTES", 4_000_000)
    monkeypatch.setattr(staging, "_start_writeback", noted)
    staged = write_pieces(tmp_path, 10)
    assert ranges == [(0, 4_000_000), (4_000_000, 4_000_000)]
    assert (tmp_path / "succeeded.jsonl").read_bytes() == PIECE * 10
    assert staged.size == 10 * len(PIECE)


def test_without_sync_file_range_the_file_is_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def refused(handle: Any, offset: int, length: int) -> bool:
        calls.append(offset)
        return False

    monkeypatch.setattr(staging, "_WRITEBACK_BYTES", 2_000_000)
    monkeypatch.setattr(staging, "_start_writeback", refused)
    write_pieces(tmp_path, 6)
    # Refused once, not asked again for the same file.
    assert calls == [0]
    assert (tmp_path / "succeeded.jsonl").read_bytes() == PIECE * 6


def test_a_file_without_a_descriptor_is_left_to_its_store() -> None:
    class Remote:
        flushed = False

        def fileno(self) -> int:
            raise OSError("no descriptor")

        def flush(self) -> None:
            self.flushed = True

    remote = Remote()
    assert staging._start_writeback(remote, 0, 10) is False
    assert not remote.flushed, "an object store's part is not sent early"
