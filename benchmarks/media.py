"""Media: the images and videos of a finished batch stored beside its results through ``export_results``.

One emulator (in its own process) holds a finished batch of image requests (``n`` images each)
and video requests; it serves the PNGs and MP4s the results name. Both sides run in fresh child
processes and fetch the same files from it.

Ours: the whole export with ``media="download"``: result pages read and written as JSONL, every
URL checked against the media policy, streamed to a local folder four at a time with its SHA-256,
rows rewritten to point at the files, a manifest. Baseline: plain httpx streaming the same URLs
(gathered before the clock starts) into files with the same four threads and nothing else. The
gap is what the export's safety and bookkeeping cost per file.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
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
)

CONCURRENCY = 4
EMULATOR_FLAGS = ("--processing-rate", "0", "--add-rate-limit", "0", "--create-rate-limit", "0")


def fill(url: str, images: int, per_request: int, videos: int) -> str:
    """One finished batch of ``images`` image requests (``per_request`` each) and ``videos`` video requests."""
    from airflow_provider_xai_batch.client import ClientLimits, XAIBatchClient

    requests: list[dict[str, Any]] = [
        {
            "custom_id": f"img-{i:06d}",
            "url": "/v1/images/generations",
            "body": {"model": "grok-imagine-image", "prompt": f"picture {i}", "n": per_request},
        }
        for i in range(images)
    ]
    requests += [
        {
            "custom_id": f"vid-{i:06d}",
            "url": "/v1/videos/generations",
            "body": {"model": "grok-imagine-video", "prompt": f"clip {i}"},
        }
        for i in range(videos)
    ]
    limits = ClientLimits(create_calls=None, add_calls=None)
    with XAIBatchClient(API_KEY, base_url=url, limits=limits) as client:
        batch = client.create_batch(f"media-{time.time()}")
        client.add_requests(batch.batch_id, requests)
        state = client.get_batch(batch.batch_id)
        if state.status.value != "completed":
            raise RuntimeError(f"batch {batch.batch_id} did not finish: {state.state}")
        return batch.batch_id


def media_urls(url: str, batch_id: str) -> list[str]:
    """Every media URL the batch's results name, read outside the timed part."""
    from airflow_provider_xai_batch.client import XAIBatchClient
    from airflow_provider_xai_batch.results.media.items import media_items

    found: list[str] = []
    with XAIBatchClient(API_KEY, base_url=url) as client:
        for result in client.iter_results(batch_id):
            kind = result.response_kind or ""
            found += [item.url for item in media_items(kind, result.response) if item.url]
    return found


def _ours(url: str, batch_id: str, folder: str, queue: Any) -> None:
    from airflow_provider_xai_batch.client import XAIBatchClient
    from airflow_provider_xai_batch.results import export_results, resolve_output_folder

    resolve_output_folder("file://" + folder)
    quiet = logging.getLogger("benchmarks.media.export")
    quiet.propagate = False
    quiet.addHandler(logging.NullHandler())
    with XAIBatchClient(API_KEY, base_url=url, timeout=600) as client, PeakRSS() as rss:
        start = time.perf_counter()
        manifest = export_results(
            client, batch_id, "file://" + folder, log=quiet, media_concurrency=CONCURRENCY
        )
        elapsed = time.perf_counter() - start
    media = manifest["media"]
    queue.put(
        {
            "files": media["files"],
            "bytes": media["bytes"],
            "failed": media["failed"],
            "seconds": elapsed,
            "peak_mb": rss.peak_mb,
        }
    )


def _baseline(urls: list[str], folder: str, queue: Any) -> None:
    import httpx

    def fetch(client: httpx.Client, number: int, target: str) -> int:
        size = 0
        with (
            client.stream("GET", target) as response,
            open(os.path.join(folder, f"{number}.bin"), "wb") as out,
        ):
            response.raise_for_status()
            for chunk in response.iter_bytes(1024 * 1024):
                out.write(chunk)
                size += len(chunk)
        return size

    with httpx.Client(timeout=600) as client, PeakRSS() as rss, ThreadPoolExecutor(CONCURRENCY) as pool:
        start = time.perf_counter()
        sizes = list(pool.map(lambda pair: fetch(client, *pair), enumerate(urls)))
        elapsed = time.perf_counter() - start
    queue.put({"files": len(sizes), "bytes": sum(sizes), "seconds": elapsed, "peak_mb": rss.peak_mb})


def run(images: int, workdir: Path, *, per_request: int = 4, videos: int = 0, repeats: int = 1) -> list[Row]:
    """Export the media batch ``repeats`` times per side, alternating sides; medians reported."""
    airflow_environment()
    ours_runs: list[dict[str, Any]] = []
    base_runs: list[dict[str, Any]] = []
    with emulator_process(*EMULATOR_FLAGS) as url:
        batch_id = fill(url, images, per_request, videos)
        urls = media_urls(url, batch_id)
        for attempt in range(repeats):
            sides = [("baseline", base_runs), ("ours", ours_runs)]
            for name, into in sides if attempt % 2 == 0 else list(reversed(sides)):
                folder = workdir / f"{name}-{attempt}"
                folder.mkdir()
                try:
                    if name == "ours":
                        into.append(in_child(_ours, url, batch_id, str(folder)))
                    else:
                        into.append(in_child(_baseline, urls, str(folder)))
                finally:
                    shutil.rmtree(folder, ignore_errors=True)
    expected = images * per_request + videos
    for ours in ours_runs:
        if ours["files"] != expected or ours["failed"]:
            raise RuntimeError(f"media export went wrong: {ours} (expected {expected} files)")
    ours_seconds = sorted(run["seconds"] for run in ours_runs)[len(ours_runs) // 2]
    base_seconds = sorted(run["seconds"] for run in base_runs)[len(base_runs) // 2]
    total_mb = ours_runs[0]["bytes"] / 1e6
    label = f"{expected:,} files, {total_mb:.1f} MB"
    notes = {"ours": ours_runs, "baseline": base_runs}
    return [
        Row(
            "media",
            f"files/s ({label})",
            expected / ours_seconds,
            expected / base_seconds,
            "files/s",
            notes=notes,
        ),
        Row(
            "media",
            f"MB/s ({label})",
            total_mb / ours_seconds,
            base_runs[0]["bytes"] / 1e6 / base_seconds,
            "MB/s",
        ),
        Row(
            "media",
            f"peak RSS ({label})",
            max(run["peak_mb"] for run in ours_runs),
            max(run["peak_mb"] for run in base_runs),
            "MB",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=250)
    parser.add_argument("--per-request", type=int, default=4)
    parser.add_argument("--videos", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        rows = run(
            args.images, Path(tmp), per_request=args.per_request, videos=args.videos, repeats=args.repeats
        )
    print(format_table(rows))


if __name__ == "__main__":
    main()
