"""Progress of a long export in the task log: rows written, share of the batch, rows per second.

A line is logged at most once per ``interval`` seconds, whatever the page size, so a
million-row export says where it is about once a minute without flooding the log. The clock
is injectable, so the pacing is tested without waiting.

>>> import logging
>>> now = [0.0]
>>> progress = ExportProgress(logging.getLogger("export"), "batch_1", expected=1000, interval=60.0,
...                           clock=lambda: now[0])
>>> now[0] = 61.0
>>> progress.message(250)
'batch batch_1: 250 of 1000 results written (25%), 4 rows/s'
"""

from __future__ import annotations

import time
from collections.abc import Callable

from airflow_provider_xai_batch.logs import LogLike
from airflow_provider_xai_batch.waiting.progress import DEFAULT_PROGRESS_INTERVAL, Pacing, per_second


class ExportProgress:
    """Logs how far an export is, at most once per ``interval`` seconds, and a summary at the end.

    ``expected`` is the batch's request count when known (``None`` or ``0`` otherwise): the
    percentage is only shown against a real total.
    """

    def __init__(
        self,
        log: LogLike,
        batch_id: str,
        *,
        expected: int | None = None,
        interval: float = DEFAULT_PROGRESS_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.batch_id = batch_id
        self.expected = expected or None
        self.interval = interval
        self.clock = clock
        self.started = clock()
        # The first line comes one interval after the start, not at once.
        self._pacing = Pacing(interval, last=self.started)

    @property
    def elapsed(self) -> float:
        """Seconds since the export started."""
        return self.clock() - self.started

    def rate(self, rows: int) -> float:
        """Rows per second since the export started (0 before any time has passed)."""
        return per_second(rows, self.elapsed)

    def message(self, rows: int) -> str:
        """The progress line for ``rows`` written so far."""
        rate = self.rate(rows)
        if self.expected:
            share = 100 * rows / self.expected
            return f"batch {self.batch_id}: {rows} of {self.expected} results written ({share:.0f}%), {rate:.0f} rows/s"
        return f"batch {self.batch_id}: {rows} results written, {rate:.0f} rows/s"

    def update(self, rows: int) -> bool:
        """Called after each page; logs a progress line when ``interval`` has passed. Returns whether it did."""
        now = self.clock()
        if not self._pacing.due(now):
            return False
        self._pacing.mark(now)
        self.log.info("%s", self.message(rows))
        return True

    def summary(self, succeeded: int, failed: int, cancelled: int, where: str) -> str:
        """The closing line: what was written, where, in how long, how fast."""
        seconds = self.elapsed
        rate = self.rate(succeeded + failed)
        return (
            f"batch {self.batch_id}: {succeeded} succeeded, {failed} failed ({cancelled} cancelled) "
            f"written to {where} in {seconds:.1f} s ({rate:.0f} rows/s)"
        )
