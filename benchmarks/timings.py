"""Timings the tests leave out: each figure here is a behaviour the tests check without a clock.

The tests assert what happens (answers arrive, a connection is closed, a trigger stops at its
deadline, nothing is lost in a 429 storm); how long it takes depends on the machine, so it is
measured here against the bound it should stay within:

- emulator latency: four calls at once to an emulator answering after 300 ms finish side by
  side (about 0.3 s), not one after another (1.2 s);
- an injected 250 ms latency on one route delays that call by at least 250 ms;
- stopping the emulator with an idle connection open takes well under 2 s;
- the emulator's service adds and serves 30,000 requests in well under 20 s;
- a trigger with a 10 s poll interval and a deadline 0.5 s away yields its timeout at the
  deadline, not a whole interval later;
- a 429 storm (3 add calls per 2 s, two workers sending as fast as they can) takes at least as
  long as the limit allows, and not much longer.

``python -m benchmarks.timings`` prints the table; ``benchmarks.run`` includes it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import threading
import time
from typing import Any

from benchmarks.harness import API_KEY, Row, airflow_environment, format_table

AUTH = {"Authorization": f"Bearer {API_KEY}"}
CONN_ENV = "AIRFLOW_CONN_XAI_TIMING"


def _chat(request_id: str, text: str) -> dict[str, Any]:
    body = {"model": "grok-4.3", "messages": [{"role": "user", "content": text}]}
    return {"batch_request_id": request_id, "batch_request": {"chat_get_completion": body}}


def concurrent_latency(latency_ms: int = 300, calls: int = 4) -> Row:
    import httpx

    from airflow_provider_xai_batch.emulator import EmulatorServer

    with EmulatorServer(api_key=API_KEY, latency_ms=latency_ms) as emulator:

        def call() -> None:
            httpx.get(f"{emulator.url}/v1/batches", headers=AUTH).raise_for_status()

        threads = [threading.Thread(target=call) for _ in range(calls)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    serial = calls * latency_ms / 1000
    return Row(
        "timings",
        f"{calls} calls at once, emulator latency {latency_ms} ms",
        elapsed,
        serial,
        "s",
        "< 1 s (side by side)",
        latency_ms / 1000 <= elapsed < 1.0,
        notes={"one after another": serial},
    )


def injected_latency(latency_ms: int = 250) -> Row:
    import httpx

    from airflow_provider_xai_batch.emulator import EmulatorServer

    with (
        EmulatorServer(api_key=API_KEY) as emulator,
        httpx.Client(base_url=emulator.url, headers=AUTH) as http,
    ):
        http.get("/v1/batches").raise_for_status()  # connection open, so only the delay is timed
        emulator.faults.inject("list_batches", latency_ms=latency_ms)
        started = time.perf_counter()
        http.get("/v1/batches").raise_for_status()
        elapsed = time.perf_counter() - started
    bound = (latency_ms - 10) / 1000
    return Row(
        "timings",
        f"call with an injected {latency_ms} ms latency",
        elapsed,
        latency_ms / 1000,
        "s",
        f">= {bound:g} s",
        elapsed >= bound,
    )


def stop_with_idle_connection() -> Row:
    from airflow_provider_xai_batch.emulator import EmulatorServer

    emulator = EmulatorServer(api_key=API_KEY).start()
    idle = socket.create_connection(("127.0.0.1", emulator.port))
    try:
        started = time.perf_counter()
        emulator.stop()
        elapsed = time.perf_counter() - started
    finally:
        idle.close()
    return Row(
        "timings", "emulator stop, one idle connection open", elapsed, None, "s", "< 2 s", elapsed < 2.0
    )


def service_volume(total: int = 30_000, per_call: int = 3_000) -> Row:
    from airflow_provider_xai_batch.emulator import BatchService, EmulatorConfig

    service = BatchService(EmulatorConfig(api_key=API_KEY, create_rate_limit=0, add_rate_limit=0))
    batch_id = service.create_batch("big")["batch_id"]
    started = time.perf_counter()
    for start in range(0, total, per_call):
        service.add_requests(
            batch_id, [_chat(f"r{n:07d}", f"prompt {n}") for n in range(start, start + per_call)]
        )
    seen, token = 0, None
    while True:
        page = service.list_results(batch_id, 1000, token)
        seen += len(page["results"])
        token = page["pagination_token"]
        if token is None:
            break
    elapsed = time.perf_counter() - started
    if seen != total:
        raise RuntimeError(f"the service served {seen} of {total} results")
    return Row(
        "timings",
        f"service: add and read {total:,} requests",
        elapsed,
        None,
        "s",
        "< 20 s",
        elapsed < 20,
    )


def trigger_deadline(deadline: float = 0.5, poll_interval: float = 10.0) -> Row:
    from airflow_provider_xai_batch.emulator import EmulatorServer
    from airflow_provider_xai_batch.hooks.xai import XAIBatchHook
    from airflow_provider_xai_batch.triggers.batch import XAIBatchTrigger

    airflow_environment()
    with EmulatorServer(
        api_key=API_KEY, processing_rate=0.1, create_rate_limit=0, add_rate_limit=0
    ) as emulator:
        batch_id = emulator.service.create_batch("deadline")["batch_id"]
        emulator.service.add_requests(batch_id, [_chat(f"d{n}", "question") for n in range(50)])
        os.environ[CONN_ENV] = json.dumps(
            {"conn_type": "xai", "password": API_KEY, "host": emulator.url, "extra": {"max_retries": 0}}
        )

        async def wait() -> tuple[list[dict[str, Any]], float]:
            # The first connection lookup of a process loads much of Airflow: not part of the wait.
            client = await XAIBatchHook(xai_conn_id="xai_timing").get_async_conn()
            await client.aclose()
            trigger = XAIBatchTrigger(
                batch_id, "xai_timing", poll_interval=poll_interval, end_time=time.time() + deadline
            )
            started = time.perf_counter()
            events = [event.payload async for event in trigger.run()]
            return events, time.perf_counter() - started

        try:
            events, elapsed = asyncio.run(wait())
        finally:
            os.environ.pop(CONN_ENV, None)
    if [event["status"] for event in events] != ["timeout"]:
        raise RuntimeError(f"expected one timeout event, got {events}")
    return Row(
        "timings",
        f"trigger timeout, deadline {deadline:g} s, poll interval {poll_interval:g} s",
        elapsed,
        poll_interval,
        "s",
        f"{deadline - 0.1:g}-3 s",
        deadline - 0.1 <= elapsed < 3.0,
        notes={"a whole poll interval": poll_interval},
    )


def rate_limit_storm(requests: int = 1500, per_call: int = 100, limit: int = 3, window: float = 2.0) -> Row:
    from airflow_provider_xai_batch.client import ClientLimits, XAIBatchClient
    from airflow_provider_xai_batch.emulator import EmulatorServer

    rows = [_chat(f"storm-{n:05d}", f"prompt {n}") for n in range(requests)]
    # Each worker sends two thirds of the input; the middle third is sent by both.
    shares = [rows[: 2 * requests // 3], rows[requests // 3 :]]
    limits = ClientLimits(add_calls=None, create_calls=None, max_requests_per_call=per_call)
    with EmulatorServer(api_key=API_KEY, add_rate_limit=limit, add_rate_window_seconds=window) as emulator:
        batch_id = emulator.service.create_batch("storm")["batch_id"]

        def worker(share: list[dict[str, Any]]) -> None:
            with XAIBatchClient(API_KEY, base_url=emulator.url, limits=limits) as client:
                client.add_requests(batch_id, share)

        threads = [threading.Thread(target=worker, args=(share,)) for share in shares]
        # Every 429 is logged as a retry; the table says how many there were.
        client_log = logging.getLogger("airflow_provider_xai_batch.client")
        level = client_log.level
        client_log.setLevel(logging.ERROR)
        started = time.monotonic()
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
        finally:
            client_log.setLevel(level)
        elapsed = time.monotonic() - started
        accepted = emulator.answers(200, "add_requests")
        rate_limited = emulator.answers(429, "add_requests")
    # The first window lets `limit` calls through at once; each later window lets `limit` more.
    minimum = (accepted / limit - 1) * window
    return Row(
        "timings",
        f"429 storm: {accepted} add calls through {limit} per {window:g} s",
        elapsed,
        minimum,
        "s",
        ">= limit allows, < 60 s",
        minimum <= elapsed < 60,
        notes={"429": rate_limited},
    )


def run(quick: bool = False) -> list[Row]:
    """Every timing above; ``quick`` shrinks the volume and the storm."""
    return [
        concurrent_latency(),
        injected_latency(),
        stop_with_idle_connection(),
        service_volume(6_000 if quick else 30_000),
        trigger_deadline(),
        rate_limit_storm(600 if quick else 1500),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller volume and storm")
    args = parser.parse_args()
    airflow_environment()
    print(format_table(run(args.quick)))


if __name__ == "__main__":
    main()
