"""A long export says how far it is in the task log, at a bounded pace, and sums up at the end."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_xai_batch.client import XAIBatchClient
from airflow_provider_xai_batch.emulator import EmulatorServer
from airflow_provider_xai_batch.results import export_results
from airflow_provider_xai_batch.results.progress import ExportProgress

API_KEY = "results-progress-key-7"
LOGGER = "tests.results.progress"
PROGRESS_LINE = re.compile(r"(\d+) of (\d+) results written \((\d+)%\), (\d+) rows/s")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == LOGGER]


def test_progress_is_logged_at_most_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    progress = ExportProgress(
        logging.getLogger(LOGGER), "batch_p", expected=10_000, interval=60.0, clock=clock
    )
    caplog.set_level(logging.INFO, logger=LOGGER)

    # A page every 5 seconds for 3 minutes, 100 rows each.
    rows = 0
    for _ in range(36):
        clock.now += 5
        rows += 100
        progress.update(rows)

    lines = messages(caplog)
    assert len(lines) == 3  # at 60 s, 120 s and 180 s
    written = [int(PROGRESS_LINE.search(line).group(1)) for line in lines]  # type: ignore[union-attr]
    assert written == [1200, 2400, 3600]
    first = PROGRESS_LINE.search(lines[0])
    assert first is not None
    assert first.group(2) == "10000"
    assert first.group(3) == str(round(100 * 1200 / 10_000))
    assert first.group(4) == str(round(1200 / 60))
    assert all("batch_p" in line for line in lines)


def test_progress_without_a_known_total_shows_no_percentage(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    progress = ExportProgress(logging.getLogger(LOGGER), "batch_q", expected=0, interval=1.0, clock=clock)
    caplog.set_level(logging.INFO, logger=LOGGER)
    clock.now += 2
    assert progress.update(500)

    (line,) = messages(caplog)
    assert "500 results written" in line
    assert "%" not in line
    assert "250 rows/s" in line


@pytest.fixture(scope="module")
def client() -> Iterator[XAIBatchClient]:
    with (
        EmulatorServer(api_key=API_KEY, create_rate_limit=0, add_rate_limit=0) as server,
        XAIBatchClient(API_KEY, base_url=server.url) as client,
    ):
        yield client


def requests(count: int) -> Iterator[dict[str, object]]:
    for number in range(count):
        content = f"question {number}" + (" [[fail]]" if number % 10 == 0 else "")
        body = {"model": "grok-4.3", "messages": [{"role": "user", "content": content}]}
        yield {"custom_id": f"p-{number:04d}", "body": body}


def test_export_logs_progress_per_page_and_a_summary(
    client: XAIBatchClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    batch = client.create_batch("results-progress")
    client.add_requests(batch.batch_id, requests(250))
    caplog.set_level(logging.INFO, logger=LOGGER)

    manifest = export_results(
        client, batch.batch_id, tmp_path, page_size=50, log=logging.getLogger(LOGGER), progress_interval=0
    )

    lines = messages(caplog)
    progress = [match for line in lines if (match := PROGRESS_LINE.search(line))]
    # One line per page (the interval is zero), counting up to the whole batch.
    assert [int(match.group(1)) for match in progress] == [50, 100, 150, 200, 250]
    assert {match.group(2) for match in progress} == {"250"}
    assert progress[-1].group(3) == "100"

    summary = lines[-1]
    assert f"{manifest['succeeded']} succeeded, {manifest['failed']} failed" in summary
    assert manifest["failed"] == 25
    assert re.search(r"in \d+\.\d s \(\d+ rows/s\)", summary)
    assert str(tmp_path) in summary
