"""Run many XAIBatchTrigger waits on one event loop and report the loop's worst lag, as JSON.

Runs in a process of its own, like a triggerer: the test process (pytest, captured output, its
fixtures) would add pauses that are not the triggers' doing. Protocol on stdin/stdout:

1. prints ``lag-probe ready`` once Airflow is imported and the connection looked up once;
2. reads one JSON line ``{"batch_ids": [...], "poll_interval": ...}``;
3. prints ``lag-probe result {"worst_lag": s, "worst_at": s, "elapsed": s, "statuses": [...]}``.

Log lines may come in between; the ``lag-probe`` prefix tells the protocol apart.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from typing import Any

MONITOR_TICK = 0.010
PREFIX = "lag-probe"


async def measure(batch_ids: list[str], conn_id: str, poll_interval: float) -> dict[str, Any]:
    from airflow_provider_xai_batch.triggers.batch import XAIBatchTrigger

    triggers = [XAIBatchTrigger(batch_id, conn_id, poll_interval=poll_interval) for batch_id in batch_ids]
    finished = asyncio.Event()
    worst, worst_at = 0.0, 0.0
    started = time.perf_counter()

    async def monitor() -> None:
        nonlocal worst, worst_at
        while not finished.is_set():
            asked = time.perf_counter()
            await asyncio.sleep(MONITOR_TICK)
            lag = time.perf_counter() - asked - MONITOR_TICK
            if lag > worst:
                worst, worst_at = lag, asked - started

    watcher = asyncio.ensure_future(monitor())
    await asyncio.sleep(0)
    try:
        events = await asyncio.wait_for(asyncio.gather(*(trigger.wait() for trigger in triggers)), 120)
    finally:
        finished.set()
        await watcher
    return {
        "worst_lag": worst,
        "worst_at": worst_at,
        "elapsed": time.perf_counter() - started,
        "statuses": [[event["status"], event["batch_status"]] for event in events],
    }


async def warm_up(conn_id: str) -> None:
    from airflow_provider_xai_batch.hooks.xai import XAIBatchHook

    client = await XAIBatchHook(xai_conn_id=conn_id).get_async_conn()
    await client.aclose()


def main() -> None:
    conn_id = sys.argv[1]
    asyncio.run(warm_up(conn_id))
    # Airflow's import-time heap is long-lived; a full collection of it would pause any loop.
    gc.collect()
    gc.freeze()
    print(f"{PREFIX} ready", flush=True)
    request = json.loads(sys.stdin.readline())
    result = asyncio.run(measure(request["batch_ids"], conn_id, float(request["poll_interval"])))
    print(f"{PREFIX} result {json.dumps(result)}", flush=True)


if __name__ == "__main__":
    main()
