"""Results: a finished batch exported to local object storage through ``export_results``.

One emulator is filled once (``--processing-rate 0`` finishes every request as it is added,
``--error-rate 0.05`` makes one row in twenty a failure) and both sides read from it; reading
results changes nothing in the emulator.

Baseline: the same pages (1,000 rows each) fetched with plain httpx, each body appended to one
file as it came, with only the page token read out of it. That is the least any exporter can do:
one request per page and the bytes on disk. The writer also splits rows into succeeded and
failed, rewrites each row as one JSONL line, counts cost, hashes the files, stages and renames
them and writes a manifest. Each side runs in a fresh child process, so its peak RSS is its own.

The same run exports the same batch a third way, as Parquet (``output_format="parquet"``), and
compares it with the JSONL export: rows per second and peak RSS, flat from the smallest to the
largest count.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    API_KEY,
    PeakRSS,
    Row,
    airflow_environment,
    emulator_process,
    format_table,
    in_child,
    median,
    rss_growth_rows,
)

PAGE_SIZE = 1000
ERROR_RATE = 0.05
EMULATOR_FLAGS = (
    "--processing-rate",
    "0",
    "--add-rate-limit",
    "0",
    "--create-rate-limit",
    "0",
    "--error-rate",
    str(ERROR_RATE),
)


def small_requests(count: int, prefix: str) -> Iterator[dict[str, Any]]:
    """``count`` short chat requests in the OpenAI-style shape ``add_requests`` accepts."""
    for i in range(count):
        yield {
            "custom_id": f"{prefix}-{i:08d}",
            "body": {
                "model": "grok-4.3",
                "max_tokens": 16,
                "messages": [{"role": "user", "content": f"Question {i}: is this review positive?"}],
            },
        }


def fill(url: str, counts: list[int]) -> dict[int, str]:
    """One finished batch per count, filled through the client; returns ``{count: batch_id}``."""
    from airflow_provider_xai_batch.client import ClientLimits, XAIBatchClient

    batches: dict[int, str] = {}
    limits = ClientLimits(create_calls=None, add_calls=None)
    with XAIBatchClient(API_KEY, base_url=url, limits=limits) as client:
        for count in counts:
            batch = client.create_batch(f"results-{count}-{time.time()}")
            client.add_requests(batch.batch_id, small_requests(count, f"r{count}"))
            state = client.get_batch(batch.batch_id)
            if state.status.value != "completed" or state.state.num_requests != count:
                raise RuntimeError(f"batch {batch.batch_id} did not finish: {state.state}")
            batches[count] = batch.batch_id
    return batches


def _ours(url: str, batch_id: str, folder: str, queue: Any, output_format: str = "jsonl") -> None:
    from airflow_provider_xai_batch.client import XAIBatchClient
    from airflow_provider_xai_batch.results import export_results, resolve_output_folder

    # Imports stay outside the timing on both sides; the first ObjectStoragePath of a process
    # imports its filesystem modules.
    resolve_output_folder("file://" + folder)
    if output_format == "parquet":
        # pyarrow's import (a few tenths of a second) is a worker's once per process, not per row.
        import pyarrow.parquet  # noqa: F401
    quiet = logging.getLogger("benchmarks.results.export")
    quiet.propagate = False
    quiet.addHandler(logging.NullHandler())
    with XAIBatchClient(API_KEY, base_url=url, timeout=600) as client, PeakRSS() as rss:
        cpu = time.process_time()
        start = time.perf_counter()
        manifest = export_results(
            client, batch_id, "file://" + folder, page_size=PAGE_SIZE, log=quiet, output_format=output_format
        )
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
    size = sum(path.stat().st_size for path in Path(folder).iterdir())
    if output_format == "parquet":
        # The tables read back with the counts the manifest gives (their footers, not their rows).
        import pyarrow.parquet as pq

        for key in ("succeeded", "failed"):
            rows = pq.ParquetFile(Path(folder) / f"{key}.parquet").metadata.num_rows
            if rows != manifest[key]:
                raise RuntimeError(f"{key}.parquet holds {rows} rows, the manifest says {manifest[key]}")
    queue.put(
        {
            "rows": manifest["total"],
            "succeeded": manifest["succeeded"],
            "failed": manifest["failed"],
            "reconciled": manifest["reconciled"],
            "bytes": size,
            "seconds": elapsed,
            "cpu_seconds": cpu,
            "peak_mb": rss.peak_mb,
        }
    )


def _parquet(url: str, batch_id: str, folder: str, queue: Any) -> None:
    _ours(url, batch_id, folder, queue, output_format="parquet")


def _baseline(url: str, batch_id: str, folder: str, queue: Any) -> None:
    import httpx
    import msgspec

    class Token(msgspec.Struct):
        pagination_token: str | None = None

    read_token = msgspec.json.Decoder(Token).decode
    headers = {"Authorization": f"Bearer {API_KEY}"}
    pages = 0
    path = os.path.join(folder, "pages.json")
    client = httpx.Client(base_url=url, headers=headers, timeout=600)
    with client as http, PeakRSS() as rss, open(path, "wb") as out:
        cpu = time.process_time()
        start = time.perf_counter()
        token: str | None = None
        while True:
            params: dict[str, Any] = {"limit": PAGE_SIZE}
            if token:
                params["pagination_token"] = token
            response = http.get(f"/v1/batches/{batch_id}/results", params=params)
            response.raise_for_status()
            out.write(response.content)
            pages += 1
            token = read_token(response.content).pagination_token
            if not token:
                break
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
    size = os.path.getsize(path)
    queue.put({"pages": pages, "bytes": size, "seconds": elapsed, "cpu_seconds": cpu, "peak_mb": rss.peak_mb})


def _side(target: Any, url: str, batch_id: str, workdir: Path, name: str) -> dict[str, Any]:
    folder = workdir / name
    folder.mkdir()
    try:
        return in_child(target, url, batch_id, str(folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(counts: list[int], workdir: Path, repeats: int = 1) -> list[Row]:
    """Export each count ``repeats`` times per side, alternating sides; medians reported."""
    airflow_environment()
    rows: list[Row] = []
    peaks: dict[int, float] = {}
    parquet_peaks: dict[int, float] = {}
    with emulator_process(*EMULATOR_FLAGS) as url:
        fill_start = time.perf_counter()
        batches = fill(url, counts)
        fill_seconds = time.perf_counter() - fill_start
        for count in counts:
            ours_runs: list[dict[str, Any]] = []
            base_runs: list[dict[str, Any]] = []
            parquet_runs: list[dict[str, Any]] = []
            for attempt in range(repeats):
                order = [(_baseline, base_runs), (_ours, ours_runs), (_parquet, parquet_runs)]
                for target, into in order if attempt % 2 == 0 else reversed(order):
                    into.append(_side(target, url, batches[count], workdir, target.__name__.strip("_")))
            for ours in ours_runs + parquet_runs:
                if ours["rows"] != count or not ours["reconciled"] or ours["failed"] == 0:
                    raise RuntimeError(f"export of {count:,} results went wrong: {ours}")
            rate = count / median([run["seconds"] for run in ours_runs])
            base_rate = count / median([run["seconds"] for run in base_runs])
            peaks[count] = max(run["peak_mb"] for run in ours_runs)
            failed = ours_runs[0]["failed"]
            rows.append(
                Row(
                    "results",
                    f"rows/s ({count:,}, {failed / count:.0%} failed)",
                    rate,
                    base_rate,
                    "rows/s",
                    ">= 0.9x",
                    rate >= 0.9 * base_rate,
                    notes={"fill_seconds": fill_seconds, "ours": ours_runs, "baseline": base_runs},
                )
            )
            rows.append(
                Row(
                    "results",
                    f"peak RSS ({count:,})",
                    peaks[count],
                    max(run["peak_mb"] for run in base_runs),
                    "MB",
                )
            )
            parquet_rate = count / median([run["seconds"] for run in parquet_runs])
            parquet_peaks[count] = max(run["peak_mb"] for run in parquet_runs)
            rows.append(
                Row(
                    "results",
                    f"parquet rows/s vs jsonl ({count:,})",
                    parquet_rate,
                    rate,
                    "rows/s",
                    ">= 0.9x",
                    parquet_rate >= 0.9 * rate,
                    notes={"parquet": parquet_runs},
                )
            )
            rows.append(
                Row(
                    "results",
                    f"parquet rows/s vs raw ({count:,})",
                    parquet_rate,
                    base_rate,
                    "rows/s",
                    ">= 0.9x",
                    parquet_rate >= 0.9 * base_rate,
                )
            )
            rows.append(
                Row("results", f"parquet peak RSS ({count:,})", parquet_peaks[count], peaks[count], "MB")
            )
    rows.extend(rss_growth_rows("results", peaks))
    rows.extend(rss_growth_rows("results parquet", parquet_peaks))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--counts", default="100000,1000000")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        rows = run([int(c) for c in args.counts.split(",")], Path(tmp), args.repeats)
    print(format_table(rows))


if __name__ == "__main__":
    main()
