"""Run every benchmark and print one table: ``python -m benchmarks.run`` (what ``make bench`` does).

``--quick`` uses small counts, for a smoke run in a minute or two; ``--only NAME`` (repeatable,
or comma-separated) runs just those. A missed target does not fail the run: the table says
``NO`` and the last line lists what was missed. A benchmark that crashes does fail it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from benchmarks.harness import Row, airflow_environment, format_table

NAMES = (
    "ingest",
    "pacing",
    "shared_limit",
    "many_waits",
    "results",
    "media",
    "triggers",
    "ceiling",
    "timings",
)


def plan(quick: bool, workdir: Path) -> dict[str, Callable[[], list[Row]]]:
    """What each benchmark runs, full size or quick."""
    from benchmarks import (
        ceiling,
        ingest,
        many_waits,
        media,
        pacing,
        results,
        shared_limit,
        timings,
        triggers,
    )

    if quick:
        return {
            "ingest": lambda: ingest.run([5_000, 20_000], workdir),
            "pacing": lambda: pacing.run(limit=10, window=1.0, windows=3),
            "shared_limit": lambda: shared_limit.run(limit=20, window=2.0, windows=4, counts=(1, 4)),
            "many_waits": lambda: many_waits.run(waits=100, poll_interval=10.0, intervals=2),
            "results": lambda: results.run([5_000, 20_000], workdir),
            "media": lambda: media.run(50, workdir, videos=10),
            "triggers": lambda: triggers.run(triggers=100, baseline_triggers=10, repeats=1),
            "ceiling": lambda: ceiling.run(
                seconds=0.5, connections=(1, 16), add_requests=5_000, result_rows=5_000, readers=(1, 2)
            ),
            "timings": lambda: timings.run(quick=True),
        }
    return {
        # At 100k only on the distant server: its point is the number of calls, not memory.
        "ingest": lambda: (
            ingest.run([100_000, 1_000_000], workdir, repeats=3, servers=("emulator", "sink"))
            + ingest.run([100_000], workdir, repeats=3, servers=("distant",))
        ),
        "pacing": lambda: pacing.run(limit=50, window=5.0, windows=5),
        "shared_limit": lambda: shared_limit.run(limit=50, window=5.0, windows=10),
        "many_waits": lambda: many_waits.run(waits=5000, poll_interval=30.0, intervals=3),
        "results": lambda: results.run([100_000, 1_000_000], workdir, repeats=3),
        "media": lambda: media.run(250, workdir, videos=50, repeats=3),
        "triggers": lambda: triggers.run(triggers=1000, baseline_triggers=100, repeats=3),
        "ceiling": lambda: ceiling.run(),
        "timings": lambda: timings.run(),
    }


def _last(rows: list[Row], benchmark: str, prefix: str, unit: str | None = None) -> Row | None:
    found = [
        row
        for row in rows
        if row.benchmark == benchmark and row.metric.startswith(prefix) and (unit is None or row.unit == unit)
    ]
    return found[-1] if found else None


def _best(rows: list[Row], prefix: str) -> float | None:
    values = [row.ours for row in rows if row.benchmark == "ceiling" and row.metric.startswith(prefix)]
    return max(values) if values else None


def against_ceiling(rows: list[Row]) -> list[Row]:
    """What the other benchmarks achieved as a share of what the emulator can serve (ratio column)."""
    compared: list[Row] = []
    add_ceiling = _best([r for r in rows if r.unit == "req/s"], "add calls")
    # The emulator's rows: the sink has no ceiling to compare with.
    ingest = _last([r for r in rows if "emulator" in r.metric], "ingest", "requests/s")
    if ingest is not None and add_ceiling:
        compared.append(Row("vs ceiling", f"ingest ours, {ingest.metric}", ingest.ours, add_ceiling, "req/s"))
        if ingest.baseline is not None:
            compared.append(
                Row("vs ceiling", f"ingest baseline, {ingest.metric}", ingest.baseline, add_ceiling, "req/s")
            )
    results_ceiling = _best(rows, "results rows/s")
    exported = _last(rows, "results", "rows/s")
    if exported is not None and results_ceiling:
        compared.append(
            Row("vs ceiling", f"results ours, {exported.metric}", exported.ours, results_ceiling, "rows/s")
        )
        if exported.baseline is not None:
            compared.append(
                Row(
                    "vs ceiling",
                    f"results baseline, {exported.metric}",
                    exported.baseline,
                    results_ceiling,
                    "rows/s",
                )
            )
    get_ceiling = _best(rows, "GET batch calls/s")
    polled = _last(rows, "triggers", "poll round,")
    if polled is not None and get_ceiling and polled.ours > 0:
        count = polled.notes["triggers"]
        compared.append(
            Row(
                "vs ceiling",
                "triggers, polls/s in the first round",
                count / polled.ours,
                get_ceiling,
                "calls/s",
            )
        )
    return compared


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument(
        "--only", action="append", default=[], metavar="NAME", help=f"one of {', '.join(NAMES)}"
    )
    args = parser.parse_args(argv)
    chosen = [name for value in args.only for name in value.split(",") if name] or list(NAMES)
    unknown = sorted(set(chosen) - set(NAMES))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(NAMES)}")

    airflow_environment()
    rows: list[Row] = []
    crashed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="xai-batch-bench-", dir=os.environ.get("BENCH_TMP")) as tmp:
        steps = plan(args.quick, Path(tmp))
        for name in NAMES:
            if name not in chosen:
                continue
            print(f"running {name} ...", file=sys.stderr, flush=True)
            start = time.perf_counter()
            try:
                rows.extend(steps[name]())
            except Exception:
                traceback.print_exc()
                crashed.append(name)
            print(f"{name} done in {time.perf_counter() - start:.0f}s", file=sys.stderr, flush=True)
    rows.extend(against_ceiling(rows))

    print(format_table(rows))
    missed = [f"{row.benchmark} {row.metric} (target {row.target})" for row in rows if row.met is False]
    print("Missed targets: " + "; ".join(missed) if missed else "All targets met.")
    if crashed:
        print(f"Crashed: {', '.join(crashed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
