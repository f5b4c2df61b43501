"""The media benchmark runs end to end at a tiny size; no timing is asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import media

pytestmark = pytest.mark.slow


def test_media(tmp_path: Path) -> None:
    rows = media.run(4, tmp_path, per_request=2, videos=2)
    by_metric = {row.metric.split(" ")[0]: row for row in rows}
    assert set(by_metric) == {"files/s", "MB/s", "peak"}
    for row in rows:
        assert row.ours > 0 and row.baseline is not None and row.baseline > 0, row
    [ours] = by_metric["files/s"].notes["ours"]
    assert (ours["files"], ours["failed"]) == (10, 0)
