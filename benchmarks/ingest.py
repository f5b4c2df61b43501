"""Ingest: requests from a local JSONL file into the emulator through ``add_requests``.

Baseline: the same bytes already packed into add-call bodies of the same size, posted with plain
httpx. Each side runs in a fresh child process so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.harness import API_KEY, PeakRSS, Row, emulator_process, in_child, median, rss_growth_rows

PROMPT = "Classify the sentiment of this product review as positive, negative or neutral. "


def request_line(i: int) -> dict[str, Any]:
    """Request ``i`` of the input: a chat request of about 500 bytes as JSON."""
    text = (PROMPT + f"Review {i}: " + "the fabric is soft and the colour true to the photos. " * 4)[:380]
    body = {"model": "grok-4.3", "max_tokens": 16, "messages": [{"role": "user", "content": text}]}
    return {"custom_id": f"row-{i:08d}", "body": body}


def write_input(path: Path, count: int) -> int:
    """``count`` JSONL lines of about 500 bytes each; returns the file size."""
    with path.open("w") as out:
        for i in range(count):
            out.write(json.dumps(request_line(i)) + "\n")
    return path.stat().st_size


def _ours(url: str, path: str, queue: Any) -> None:
    from airflow_provider_xai_batch.client import ClientLimits, XAIBatchClient
    from airflow_provider_xai_batch.client.inputs import normalise_jsonl

    limits = ClientLimits(create_calls=None, add_calls=None)
    with PeakRSS() as rss, XAIBatchClient(API_KEY, base_url=url, limits=limits) as client:
        batch = client.create_batch(f"ingest-ours-{time.time()}")
        start = time.perf_counter()
        with open(path, "rb") as handle:
            added = client.add_requests(batch.batch_id, normalise_jsonl(handle, source=path))
        elapsed = time.perf_counter() - start
        stored = client.get_batch(batch.batch_id).state.num_requests
    queue.put({"added": added, "stored": stored, "seconds": elapsed, "peak_mb": rss.peak_mb})


def _baseline(url: str, path: str, queue: Any) -> None:
    from airflow_provider_xai_batch.client.inputs import encode_request, normalise_jsonl
    from airflow_provider_xai_batch.client.protocol import pack_add_calls

    with open(path, "rb") as handle:
        encoded = ((r["batch_request_id"], encode_request(r)) for r in normalise_jsonl(handle, source=path))
        bodies = [call.body for call in pack_add_calls(encoded, max_body_bytes=25_000_000)]
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    with PeakRSS() as rss, httpx.Client(base_url=url, headers=headers, timeout=600) as http:
        batch_id = http.post("/v1/batches", json={"name": f"ingest-base-{time.time()}"}).json()["batch_id"]
        start = time.perf_counter()
        for body in bodies:
            http.post(f"/v1/batches/{batch_id}/requests", content=body).raise_for_status()
        elapsed = time.perf_counter() - start
        stored = http.get(f"/v1/batches/{batch_id}").json()["state"]["num_requests"]
    queue.put({"stored": stored, "seconds": elapsed, "peak_mb": rss.peak_mb, "calls": len(bodies)})


def run(counts: list[int], workdir: Path, repeats: int = 1) -> list[Row]:
    """Each count ``repeats`` times per side, alternating which goes first; medians reported."""
    rows: list[Row] = []
    flags = ("--add-rate-limit", "0", "--create-rate-limit", "0")
    peaks: dict[int, float] = {}
    for count in counts:
        path = workdir / f"ingest-{count}.jsonl"
        size = write_input(path, count)
        ours_runs: list[dict[str, Any]] = []
        base_runs: list[dict[str, Any]] = []
        for attempt in range(repeats):
            order = [(_baseline, base_runs), (_ours, ours_runs)]
            for target, into in order if attempt % 2 == 0 else reversed(order):
                # A fresh emulator for each side, so neither pays for what the other left in it.
                with emulator_process(*flags) as url:
                    into.append(in_child(target, url, str(path)))
        for ours in ours_runs:
            assert ours["stored"] == ours["added"] == count, ours
        for baseline in base_runs:
            assert baseline["stored"] == count, baseline
        ours = {
            "seconds": median([r["seconds"] for r in ours_runs]),
            "peak_mb": max(r["peak_mb"] for r in ours_runs),
        }
        baseline = {"seconds": median([r["seconds"] for r in base_runs])}
        peaks[count] = ours["peak_mb"]
        rate, base_rate = count / ours["seconds"], count / baseline["seconds"]
        rows.append(
            Row(
                "ingest",
                f"requests/s ({count:,})",
                rate,
                base_rate,
                "req/s",
                ">= 0.8x",
                rate >= 0.8 * base_rate,
            )
        )
        rows.append(
            Row(
                "ingest",
                f"MB/s ({count:,})",
                size / 1e6 / ours["seconds"],
                size / 1e6 / baseline["seconds"],
                "MB/s",
            )
        )
        rows.append(
            Row(
                "ingest",
                f"peak RSS ({count:,})",
                ours["peak_mb"],
                None,
                "MB",
                "< 300 MB",
                ours["peak_mb"] < 300,
            )
        )
        path.unlink()
    rows.extend(rss_growth_rows("ingest", peaks))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--counts", default="100000,1000000")
    args = parser.parse_args()
    from benchmarks.harness import format_table

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        print(format_table(run([int(c) for c in args.counts.split(",")], Path(tmp))))


if __name__ == "__main__":
    main()
