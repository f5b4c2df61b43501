"""What every benchmark needs: an emulator in its own process (the package's ``EmulatorProcess``), RSS sampling, a result table."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import statistics
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from queue import Empty
from typing import Any

import psutil

from airflow_provider_xai_batch.emulator.process import EmulatorProcess

API_KEY = "bench-key"


@contextlib.contextmanager
def emulator_process(*args: str) -> Iterator[str]:
    """The emulator in its own process with the benchmarks' key and these CLI arguments; yield its URL."""
    with EmulatorProcess(API_KEY, args=args) as emulator:
        yield emulator.url


def cpu_seconds(process: psutil.Process) -> float:
    """User plus system CPU time a process has used so far."""
    times = process.cpu_times()
    return float(times.user + times.system)


def airflow_environment() -> None:
    """Point Airflow at a throw-away home, so a benchmark neither reads nor writes ``~/airflow``.

    Child processes inherit it; set before anything imports Airflow.
    """
    if "AIRFLOW_HOME" not in os.environ:
        os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="xai-batch-bench-airflow-")
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")


def _child_main(target: Any, args: tuple[Any, ...], queue: Any) -> None:
    try:
        target(*args, queue)
    except BaseException:
        queue.put({"error": traceback.format_exc()})
        raise


def in_child(target: Any, *args: Any, timeout: float = 3600.0) -> dict[str, Any]:
    """Run ``target(*args, queue)`` in a fresh interpreter; return the dict it puts on ``queue``.

    A fresh process per side means each side's peak RSS, imports and heap are its own.
    """
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child_main, args=(target, args, queue))
    process.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                result: dict[str, Any] = queue.get(timeout=1.0)
                break
            except Empty:
                if not process.is_alive():
                    raise RuntimeError(
                        f"{getattr(target, '__name__', target)} exited ({process.exitcode}) without a result"
                    ) from None
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{getattr(target, '__name__', target)} took over {timeout:.0f}s"
                    ) from None
    finally:
        process.join(timeout=60)
        if process.is_alive():
            process.kill()
    if "error" in result:
        raise RuntimeError(f"{getattr(target, '__name__', target)} failed in its process:\n{result['error']}")
    return result


def median(values: list[float]) -> float:
    return statistics.median(values)


class PeakRSS:
    """Samples this process's resident set size in a thread; ``peak_mb`` is the highest seen."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._process = psutil.Process(os.getpid())

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self.peak = self._process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def peak_mb(self) -> float:
        return self.peak / 1e6


@dataclass
class Row:
    """One line of the final table: a measurement, its baseline, and the target."""

    benchmark: str
    metric: str
    ours: float
    baseline: float | None = None
    unit: str = ""
    target: str = ""
    met: bool | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.ours / self.baseline


def format_table(rows: list[Row]) -> str:
    header = ("benchmark", "metric", "ours", "baseline", "ratio", "target", "met")
    lines = [header]
    for row in rows:
        lines.append(
            (
                row.benchmark,
                row.metric,
                f"{row.ours:,.2f} {row.unit}".strip(),
                "" if row.baseline is None else f"{row.baseline:,.2f} {row.unit}".strip(),
                "" if row.ratio is None else f"{row.ratio:.2f}",
                row.target,
                "" if row.met is None else ("yes" if row.met else "NO"),
            )
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    rendered = [
        " | ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)) for line in lines
    ]
    rendered.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(rendered)


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - start


def rss_growth_rows(benchmark: str, peaks: dict[int, float], limit_mb: float = 50) -> list[Row]:
    """The flat-memory check: peak RSS at the largest count minus at the smallest (none for one count)."""
    if len(peaks) < 2:
        return []
    small, large = min(peaks), max(peaks)
    growth = peaks[large] - peaks[small]
    return [
        Row(
            benchmark,
            f"RSS growth {small:,} -> {large:,}",
            growth,
            None,
            "MB",
            f"flat (< {limit_mb:g} MB)",
            growth < limit_mb,
        )
    ]
