"""The timings benchmark runs end to end and measures every figure (no timing is asserted here)."""

from __future__ import annotations

import pytest

from benchmarks import timings
from benchmarks.harness import format_table

pytestmark = pytest.mark.slow


def test_every_timing_is_measured_against_its_bound() -> None:
    rows = timings.run(quick=True)
    table = format_table(rows)
    assert len(rows) == 6, table
    for row in rows:
        assert row.benchmark == "timings" and row.ours > 0, table
        assert row.target and row.met is not None, table
    storm = rows[-1]
    assert storm.notes["429"] > 0, table  # the storm really hit the limit
