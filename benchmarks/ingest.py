"""Ingest: requests from a local JSONL file through ``add_requests``, to each server in turn.

The emulator parses every body, as the service does, and sets the pace of both sides; the sink
(:mod:`benchmarks.sink`) only counts the requests in each body, so against it what is measured is
the client's own cost; ``distant`` is the emulator answering every call 250 ms late, as a service
far away or one with a fixed cost per call does, where the number of calls counts. Baseline: the
same bytes already packed into 25 MB add-call bodies, posted with plain httpx to the same server.
Each side runs in a fresh child process (and against a fresh server) so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from benchmarks.harness import API_KEY, PeakRSS, Row, emulator_process, in_child, median, rss_growth_rows
from benchmarks.sink import sink_process

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


SINK_BATCH_ID = "sink-batch"


def _stored(http: httpx.Client, server: str, batch_id: str) -> int:
    """How many requests the server holds: the emulator's batch counter, or the sink's count."""
    if server == "sink":
        return int(http.get("/count").json()["requests"])
    return int(http.get(f"/v1/batches/{batch_id}").json()["state"]["num_requests"])


def _ours(url: str, path: str, server: str, queue: Any) -> None:
    from airflow_provider_xai_batch.client import ClientLimits, XAIBatchClient
    from airflow_provider_xai_batch.client.inputs import normalise_jsonl

    limits = ClientLimits(create_calls=None, add_calls=None)
    calls: list[int] = []
    with PeakRSS() as rss, XAIBatchClient(API_KEY, base_url=url, limits=limits) as client:
        # The sink keeps no batches: its add calls go to a fixed id.
        batch_id = (
            SINK_BATCH_ID if server == "sink" else client.create_batch(f"ingest-{time.time()}").batch_id
        )
        start = time.perf_counter()
        with open(path, "rb") as handle:
            added = client.add_requests(batch_id, normalise_jsonl(handle, source=path), on_call=calls.append)
        elapsed = time.perf_counter() - start
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        stored = _stored(http, server, batch_id)
    queue.put(
        {"added": added, "stored": stored, "seconds": elapsed, "peak_mb": rss.peak_mb, "calls": len(calls)}
    )


def _baseline(url: str, path: str, server: str, queue: Any) -> None:
    from airflow_provider_xai_batch.client.inputs import encode_request, normalise_jsonl
    from airflow_provider_xai_batch.client.protocol import pack_add_calls

    with open(path, "rb") as handle:
        encoded = ((r["batch_request_id"], encode_request(r)) for r in normalise_jsonl(handle, source=path))
        bodies = [call.body for call in pack_add_calls(encoded, max_body_bytes=25_000_000)]
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    with PeakRSS() as rss, httpx.Client(base_url=url, headers=headers, timeout=600) as http:
        if server == "sink":
            batch_id = SINK_BATCH_ID
        else:
            batch_id = http.post("/v1/batches", json={"name": f"ingest-base-{time.time()}"}).json()[
                "batch_id"
            ]
        start = time.perf_counter()
        for body in bodies:
            http.post(f"/v1/batches/{batch_id}/requests", content=body).raise_for_status()
        elapsed = time.perf_counter() - start
        stored = _stored(http, server, batch_id)
    queue.put({"stored": stored, "seconds": elapsed, "peak_mb": rss.peak_mb, "calls": len(bodies)})


@contextlib.contextmanager
def _server(kind: str) -> Iterator[str]:
    """A fresh server of ``kind`` (``emulator`` or ``sink``), so neither side pays for what the other left."""
    if kind == "sink":
        with sink_process() as url:
            yield url
        return
    latency = ("--latency-ms", str(DISTANT_LATENCY_MS)) if kind == "distant" else ()
    with emulator_process("--add-rate-limit", "0", "--create-rate-limit", "0", *latency) as url:
        yield url


SERVERS = ("emulator", "sink", "distant")
# How late the ``distant`` server answers each call.
DISTANT_LATENCY_MS = 250


def run(counts: list[int], workdir: Path, repeats: int = 1, servers: tuple[str, ...] = SERVERS) -> list[Row]:
    """Each count on each server ``repeats`` times per side, alternating which goes first; medians reported."""
    rows: list[Row] = []
    for server in servers:
        peaks: dict[int, float] = {}
        for count in counts:
            path = workdir / f"ingest-{count}.jsonl"
            if not path.exists():
                write_input(path, count)
            size = path.stat().st_size
            ours_runs: list[dict[str, Any]] = []
            base_runs: list[dict[str, Any]] = []
            for attempt in range(repeats):
                order = [(_baseline, base_runs), (_ours, ours_runs)]
                for target, into in order if attempt % 2 == 0 else reversed(order):
                    with _server(server) as url:
                        into.append(in_child(target, url, str(path), server))
            for ours in ours_runs:
                assert ours["stored"] == ours["added"] == count, ours
            for baseline in base_runs:
                assert baseline["stored"] == count, baseline
            seconds = median([r["seconds"] for r in ours_runs])
            base_seconds = median([r["seconds"] for r in base_runs])
            peak = max(r["peak_mb"] for r in ours_runs)
            peaks[count] = peak
            rate, base_rate = count / seconds, count / base_seconds
            label = f"{count:,}, {server}"
            rows.append(
                Row(
                    "ingest",
                    f"requests/s ({label})",
                    rate,
                    base_rate,
                    "req/s",
                    ">= 0.9x",
                    rate >= 0.9 * base_rate,
                )
            )
            rows.append(
                Row("ingest", f"MB/s ({label})", size / 1e6 / seconds, size / 1e6 / base_seconds, "MB/s")
            )
            rows.append(
                Row(
                    "ingest",
                    f"add calls ({label})",
                    float(ours_runs[0]["calls"]),
                    float(base_runs[0]["calls"]),
                    "calls",
                )
            )
            rows.append(Row("ingest", f"peak RSS ({label})", peak, None, "MB", "< 300 MB", peak < 300))
        rows.extend(rss_growth_rows("ingest", peaks))
    for count in counts:
        (workdir / f"ingest-{count}.jsonl").unlink(missing_ok=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--counts", default="100000,1000000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--servers", default=",".join(SERVERS))
    args = parser.parse_args()
    from benchmarks.harness import format_table

    counts = [int(c) for c in args.counts.split(",")]
    servers = tuple(args.servers.split(","))
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        print(format_table(run(counts, Path(tmp), args.repeats, servers)))


if __name__ == "__main__":
    main()
