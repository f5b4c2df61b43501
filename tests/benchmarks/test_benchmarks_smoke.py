"""Every benchmark runs end to end at a tiny size and returns rows that make sense.

No timing is asserted (the machine may be busy): only that each figure was measured, is positive,
and that a comparison has its baseline and ratio. ``make bench`` runs them at full size.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import ceiling, ingest, pacing, results, run, triggers
from benchmarks.harness import Row, format_table

pytestmark = pytest.mark.slow


def _by_metric(rows: list[Row], prefix: str) -> list[Row]:
    found = [row for row in rows if row.metric.startswith(prefix)]
    assert found, f"no row starting with {prefix!r} in\n{format_table(rows)}"
    return found


def _compared(row: Row) -> None:
    assert row.ours > 0, row
    assert row.baseline is not None and row.baseline > 0, row
    assert row.ratio is not None and row.ratio > 0, row


def test_ingest(tmp_path: Path) -> None:
    rows = ingest.run([2_000], tmp_path)
    rates = _by_metric(rows, "requests/s")
    assert [rate.metric for rate in rates] == [
        "requests/s (2,000, emulator)",
        "requests/s (2,000, sink)",
        "requests/s (2,000, distant)",
    ]
    for rate in rates:
        _compared(rate)
        assert rate.met is not None
    for peak in _by_metric(rows, "peak RSS"):
        assert 0 < peak.ours < 1_000


def test_pacing() -> None:
    rows = pacing.run(limit=5, window=1.0, windows=3)
    (rate,) = _by_metric(rows, "add calls/s")
    _compared(rate)
    assert rate.baseline == pytest.approx(5.0)
    (throttled,) = _by_metric(rows, "429s per call")
    assert throttled.ours >= 0
    assert throttled.notes["calls"] == 15


def test_results(tmp_path: Path) -> None:
    rows = results.run([2_000, 4_000], tmp_path)
    for rate in _by_metric(rows, "rows/s"):
        _compared(rate)
        assert rate.met is not None
        exported = rate.notes["ours"][0]
        # The emulator fails one request in twenty; the export must carry both kinds.
        assert exported["succeeded"] > 0 and exported["failed"] > 0
        assert exported["reconciled"]
    for peak in _by_metric(rows, "peak RSS"):
        _compared(peak)
    # The same batch exported as Parquet in the same run, compared with the JSONL export.
    for parquet in _by_metric(rows, "parquet rows/s vs jsonl"):
        _compared(parquet)
        exported = parquet.notes["parquet"][0]
        assert exported["succeeded"] > 0 and exported["failed"] > 0 and exported["reconciled"]
    # ... and with the raw fetch-and-write, as the JSONL export is.
    for parquet in _by_metric(rows, "parquet rows/s vs raw"):
        _compared(parquet)
        assert parquet.met is not None
    _by_metric(rows, "RSS growth")


def test_triggers() -> None:
    rows = triggers.run(triggers=20, baseline_triggers=5, repeats=1, rounds=1)
    (round_row,) = _by_metric(rows, "poll round,")
    _compared(round_row)
    assert "x4" in round_row.metric  # the baseline is scaled up, and the table says so
    # A round cannot be faster than the emulator's answer.
    assert round_row.ours >= triggers.LATENCY_MS / 1000
    assert round_row.notes["ours"][0]["polls"] == 20
    (lag,) = _by_metric(rows, "worst loop lag;")
    assert lag.ours >= 0 and lag.baseline is not None
    # Five blocking calls of 100 ms in a row hold the loop far longer than a tick.
    assert lag.baseline >= triggers.LATENCY_MS
    _compared(_by_metric(rows, "poll round vs plain httpx")[0])
    _by_metric(rows, "memory per trigger")


def test_ceiling() -> None:
    rows = ceiling.run(seconds=0.3, connections=(1, 4), add_requests=1_000, result_rows=1_000, readers=(1,))
    for row in rows:
        # A short quick run can read no CPU time at all (the counters tick in 10 ms steps).
        assert row.ours > 0 or row.unit == "% of a core", row
    assert len(_by_metric(rows, "GET batch calls/s")) == 2
    _by_metric(rows, "add calls")
    _by_metric(rows, "results rows/s")


def test_run_compares_with_the_ceiling_and_lists_misses(capsys: pytest.CaptureFixture[str]) -> None:
    measured = [
        Row("ingest", "requests/s (10, emulator)", 50.0, 100.0, "req/s", ">= 0.9x", False),
        Row("ingest", "requests/s (10, sink)", 90.0, 100.0, "req/s", ">= 0.9x", True),
        Row("results", "rows/s (10, 5% failed)", 90.0, 100.0, "rows/s", ">= 0.9x", True),
        Row("triggers", "poll round, 10 triggers", 0.5, 5.0, "s", notes={"triggers": 10}),
        Row("ceiling", "GET batch calls/s, 4 connections", 1000.0, None, "calls/s"),
        Row("ceiling", "add calls, pre-packed 25 MB bodies", 400.0, None, "req/s"),
        Row("ceiling", "results rows/s, 1 reader", 200.0, None, "rows/s"),
    ]
    compared = {row.metric: row for row in run.against_ceiling(measured)}
    assert compared["ingest ours, requests/s (10, emulator)"].ratio == pytest.approx(50 / 400)
    assert compared["results baseline, rows/s (10, 5% failed)"].ratio == pytest.approx(100 / 200)
    assert compared["triggers, polls/s in the first round"].ours == pytest.approx(20.0)


def test_run_only_rejects_unknown_names() -> None:
    with pytest.raises(SystemExit):
        run.main(["--only", "nonsense"])
