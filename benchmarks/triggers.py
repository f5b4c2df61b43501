"""Triggers: many ``XAIBatchTrigger``s polling from one event loop, as in a triggerer.

The emulator answers every call after ``--latency-ms 100`` and processes so slowly that every
batch stays ``processing``: each trigger keeps polling. Every trigger's ``run()`` is started at
once (as after a triggerer restart), connection lookup and client set-up included. The client's
``get_batch`` is wrapped to note when each answer arrives; a poll round is over when every
trigger has had an answer. The triggers keep running for a second round, so the lag covers the
steady state too. A monitor coroutine asks to sleep 5 ms at a time and records how late it wakes:
that is how long something held the loop.

Baseline: the same trigger written the way the official OpenAI provider's batch trigger is, a
synchronous client call (``XAIBatchHook.get_batch``) inside ``async def run``. Each call holds the
loop for the whole round trip, so a round takes triggers x latency: it is measured with fewer
triggers and scaled up, which the table says.

Each side runs in a fresh child process; memory per trigger is the RSS grown from just before the
triggers start to the end of the first round, divided by the number of triggers.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from benchmarks.harness import (
    API_KEY,
    Row,
    airflow_environment,
    emulator_process,
    format_table,
    in_child,
    median,
)

CONN_ID = "xai_bench"
LATENCY_MS = 100
MONITOR_TICK = 0.005
POLL_INTERVAL = 10.0
# One request finished every ~3 hours: every batch stays processing for the whole benchmark.
PROCESSING_RATE = 0.0001
# The plain-httpx baseline spreads its GETs over clients of this many, all sent at once (as the
# triggers' shared clients used to be sized); kept fixed so its figures compare across changes.
PLAIN_GETS_PER_CLIENT = 8


def connection_json(url: str) -> str:
    return json.dumps({"conn_type": "xai", "password": API_KEY, "host": url})


async def _seed(url: str, count: int) -> list[str]:
    from airflow_provider_xai_batch.client import AsyncXAIBatchClient, ClientLimits

    limits = ClientLimits(create_calls=None, add_calls=None)
    gate = asyncio.Semaphore(100)
    request = {
        "custom_id": "q",
        "body": {"model": "grok-4.3", "messages": [{"role": "user", "content": "hi"}]},
    }

    async with AsyncXAIBatchClient(API_KEY, base_url=url, limits=limits) as client:

        async def one(index: int) -> str:
            async with gate:
                batch = await client.create_batch(f"triggers-{index}-{time.time()}")
                await client.add_requests(batch.batch_id, [request])
                return batch.batch_id

        return list(await asyncio.gather(*(one(index) for index in range(count))))


def seed_batches(url: str, count: int) -> list[str]:
    """``count`` batches of one request each that stay ``processing``."""
    return asyncio.run(_seed(url, count))


def _blocking_trigger_class() -> type:
    """The baseline trigger: a synchronous client call inside ``async def run``."""
    from airflow.triggers.base import BaseTrigger, TriggerEvent

    from airflow_provider_xai_batch.hooks.xai import XAIBatchHook

    class BlockingBatchTrigger(BaseTrigger):
        def __init__(self, batch_id: str, xai_conn_id: str, poll_interval: float, end_time: float) -> None:
            super().__init__()  # type: ignore[no-untyped-call]
            self.batch_id = batch_id
            self.xai_conn_id = xai_conn_id
            self.poll_interval = poll_interval
            self.end_time = end_time

        def serialize(self) -> tuple[str, dict[str, Any]]:
            return (
                f"{type(self).__module__}.{type(self).__qualname__}",
                {
                    "batch_id": self.batch_id,
                    "xai_conn_id": self.xai_conn_id,
                    "poll_interval": self.poll_interval,
                    "end_time": self.end_time,
                },
            )

        async def run(self) -> AsyncIterator[TriggerEvent]:
            hook = XAIBatchHook(xai_conn_id=self.xai_conn_id)
            try:
                while not (batch := hook.get_batch(self.batch_id)).is_terminal:
                    if self.end_time < time.time():
                        yield TriggerEvent({"status": "timeout", "batch_id": self.batch_id})  # type: ignore[no-untyped-call]
                        return
                    await asyncio.sleep(self.poll_interval)
                yield TriggerEvent(  # type: ignore[no-untyped-call]
                    {"status": "success", "batch_id": self.batch_id, "batch_status": batch.status.value}
                )
            except Exception as error:
                yield TriggerEvent({"status": "error", "batch_id": self.batch_id, "message": str(error)})  # type: ignore[no-untyped-call]

    return BlockingBatchTrigger


class _Answers:
    """Counts answers per batch; sets ``round_done[n]`` once every batch has had ``n`` answers."""

    def __init__(self, batch_ids: list[str], rounds: int) -> None:
        self.per_batch = dict.fromkeys(batch_ids, 0)
        self.complete = [0] * (rounds + 1)
        self.round_done = [asyncio.Event() for _ in range(rounds + 1)]
        self.round_time = [0.0] * (rounds + 1)
        self.total = len(batch_ids)

    def note(self, batch_id: str) -> None:
        seen = self.per_batch[batch_id] = self.per_batch[batch_id] + 1
        if seen < len(self.complete):
            self.complete[seen] += 1
            if self.complete[seen] == self.total:
                self.round_time[seen] = time.perf_counter()
                self.round_done[seen].set()


async def _measure(kind: str, batch_ids: list[str], rounds: int) -> dict[str, Any]:
    import psutil

    from airflow_provider_xai_batch.client import AsyncXAIBatchClient
    from airflow_provider_xai_batch.hooks.xai import XAIBatchHook
    from airflow_provider_xai_batch.triggers.batch import XAIBatchTrigger

    answers = _Answers(batch_ids, rounds)
    if kind == "ours":
        original_async = AsyncXAIBatchClient.get_batch

        async def noted_async(self: AsyncXAIBatchClient, batch_id: str) -> Any:
            batch = await original_async(self, batch_id)
            answers.note(batch_id)
            return batch

        # The first connection lookup in a process imports a lot; a triggerer has done that long ago.
        warm = await XAIBatchHook(xai_conn_id=CONN_ID).get_async_conn()
        await warm.get_batch(batch_ids[0])
        await warm.aclose()
        AsyncXAIBatchClient.get_batch = noted_async  # type: ignore[method-assign]
        triggers: list[Any] = [
            XAIBatchTrigger(batch_id, CONN_ID, poll_interval=POLL_INTERVAL) for batch_id in batch_ids
        ]
    else:
        original_sync = XAIBatchHook.get_batch

        def noted_sync(self: XAIBatchHook, batch_id: str) -> Any:
            batch = original_sync(self, batch_id)
            answers.note(batch_id)
            return batch

        warm_hook = XAIBatchHook(xai_conn_id=CONN_ID)
        warm_hook.get_batch(batch_ids[0])
        warm_hook.close()
        XAIBatchHook.get_batch = noted_sync  # type: ignore[method-assign]
        blocking = _blocking_trigger_class()
        end_time = time.time() + 3600
        triggers = [blocking(batch_id, CONN_ID, POLL_INTERVAL, end_time) for batch_id in batch_ids]

    process = psutil.Process()
    stop = asyncio.Event()
    # Full collections walk the whole heap (Airflow's included, which no trigger controls): each
    # lag is also filed by whether one ran while the monitor slept.
    collections: list[float] = []
    collection_started = [0.0]

    def note_collection(phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            collection_started[0] = time.perf_counter()
        else:
            collections.append(time.perf_counter() - collection_started[0])

    worst_lag = 0.0
    worst_lag_without_collection = 0.0

    async def monitor() -> None:
        nonlocal worst_lag, worst_lag_without_collection
        while not stop.is_set():
            seen = len(collections)
            asked = time.perf_counter()
            await asyncio.sleep(MONITOR_TICK)
            lag = time.perf_counter() - asked - MONITOR_TICK
            worst_lag = max(worst_lag, lag)
            if len(collections) == seen:
                worst_lag_without_collection = max(worst_lag_without_collection, lag)

    async def drive(trigger: Any) -> None:
        async for _event in trigger.run():
            return

    gc.collect()
    tracked_before = len(gc.get_objects())
    gc.callbacks.append(note_collection)
    watcher = asyncio.create_task(monitor())
    await asyncio.sleep(0.05)
    rss_before = process.memory_info().rss
    cpu_before = sum(process.cpu_times()[:2])
    started = time.perf_counter()
    tasks = [asyncio.create_task(drive(trigger)) for trigger in triggers]
    await answers.round_done[1].wait()
    cpu_round = sum(process.cpu_times()[:2]) - cpu_before
    rss_after = process.memory_info().rss
    first_round = answers.round_time[1] - started
    await answers.round_done[rounds].wait()
    stop.set()
    await watcher
    gc.callbacks.remove(note_collection)
    # What the waits keep for the cyclic collector to walk: a full collection runs once the objects
    # that survived since the last one exceed a quarter of all it tracks (Airflow's included).
    gc.collect()
    tracked_per_trigger = (len(gc.get_objects()) - tracked_before) / len(triggers)
    for task in tasks:
        task.cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    unexpected = [o for o in outcomes if o is not None and not isinstance(o, asyncio.CancelledError)]
    if unexpected:
        raise RuntimeError(f"{len(unexpected)} triggers ended with an error: {unexpected[0]!r}")
    return {
        "triggers": len(triggers),
        "first_round": first_round,
        "worst_lag": worst_lag,
        "worst_lag_without_collection": worst_lag_without_collection,
        "rss_delta": rss_after - rss_before,
        "cpu_per_poll": cpu_round / len(triggers),
        "full_collections": len(collections),
        "longest_collection": max(collections, default=0.0),
        "polls": sum(answers.per_batch.values()),
        "tracked_per_trigger": tracked_per_trigger,
        "tracked_before": tracked_before,
    }


def _side(
    kind: str, url: str, batch_ids: list[str], rounds: int, calls_per_client: int | None, queue: Any
) -> None:
    # The triggers' log lines are still rendered, as in a triggerer, but not printed over the table.
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    if calls_per_client is not None:
        from airflow_provider_xai_batch.triggers.client_pool import SHARED_CLIENTS

        SHARED_CLIENTS.calls_per_client = calls_per_client
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = connection_json(url)
    queue.put(asyncio.run(_measure(kind, batch_ids, rounds)))


async def _plain(url: str, batch_ids: list[str]) -> dict[str, Any]:
    import httpx

    headers = {"Authorization": f"Bearer {API_KEY}"}
    clients = [
        httpx.AsyncClient(base_url=url, headers=headers, timeout=120)
        for _ in range(0, len(batch_ids), PLAIN_GETS_PER_CLIENT)
    ]
    await clients[0].get(f"/v1/batches/{batch_ids[0]}")

    async def poll(index: int, batch_id: str) -> None:
        answer = await clients[index // PLAIN_GETS_PER_CLIENT].get(f"/v1/batches/{batch_id}")
        answer.raise_for_status()
        answer.json()

    # The same lag monitor as for the triggers: what firing 1,000 calls at once costs the loop
    # with nothing of ours in it.
    worst_lag = 0.0
    done = asyncio.Event()

    async def monitor() -> None:
        nonlocal worst_lag
        while not done.is_set():
            asked = time.perf_counter()
            await asyncio.sleep(MONITOR_TICK)
            worst_lag = max(worst_lag, time.perf_counter() - asked - MONITOR_TICK)

    watcher = asyncio.create_task(monitor())
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    await asyncio.gather(*(poll(index, batch_id) for index, batch_id in enumerate(batch_ids)))
    elapsed = time.perf_counter() - started
    done.set()
    await watcher
    for client in clients:
        await client.aclose()
    return {"first_round": elapsed, "worst_lag": worst_lag}


def _plain_side(url: str, batch_ids: list[str], queue: Any) -> None:
    queue.put(asyncio.run(_plain(url, batch_ids)))


def run(
    triggers: int = 1000,
    baseline_triggers: int = 100,
    repeats: int = 3,
    rounds: int = 2,
    calls_per_client: int | None = None,
) -> list[Row]:
    """``triggers`` of ours (median of ``repeats`` runs) against ``baseline_triggers`` blocking ones.

    ``calls_per_client`` replaces the shared clients' calls in flight, to compare settings.
    """
    airflow_environment()
    flags = (
        "--latency-ms",
        str(LATENCY_MS),
        "--processing-rate",
        str(PROCESSING_RATE),
        "--create-rate-limit",
        "0",
        "--add-rate-limit",
        "0",
    )
    with emulator_process(*flags) as url:
        batch_ids = seed_batches(url, max(triggers, baseline_triggers))
        ours_runs: list[dict[str, Any]] = []
        plain_runs: list[dict[str, Any]] = []
        baseline: dict[str, Any] = {}
        for attempt in range(repeats):
            ours_runs.append(in_child(_side, "ours", url, batch_ids[:triggers], rounds, calls_per_client))
            plain_runs.append(in_child(_plain_side, url, batch_ids[:triggers]))
            if attempt == 0:
                baseline = in_child(_side, "baseline", url, batch_ids[:baseline_triggers], rounds, None)

    scale = triggers / baseline_triggers
    round_ours = median([r["first_round"] for r in ours_runs])
    lag_ours = median([r["worst_lag"] for r in ours_runs]) * 1000
    memory_ours = median([r["rss_delta"] for r in ours_runs]) / triggers / 1024
    round_base = baseline["first_round"] * scale
    round_plain = median([r["first_round"] for r in plain_runs])
    lag_base = baseline["worst_lag"] * 1000
    memory_base = baseline["rss_delta"] / baseline_triggers / 1024
    scaled = "" if scale == 1 else f"; baseline {baseline_triggers:,} measured x{scale:g}"
    at = "" if scale == 1 else f"; baseline at {baseline_triggers:,}"
    return [
        Row(
            "triggers",
            f"poll round, {triggers:,} triggers{scaled}",
            round_ours,
            round_base,
            "s",
            # The target is against plain httpx (next row); this one shows what blocking calls cost.
            notes={"triggers": triggers, "ours": ours_runs, "baseline": baseline},
        ),
        Row(
            "triggers",
            f"poll round vs plain httpx, {triggers:,} GETs at once",
            round_ours,
            round_plain,
            "s",
            "<= 1.2x",
            round_ours <= 1.2 * round_plain,
        ),
        Row(
            "triggers",
            f"worst loop lag{at}",
            lag_ours,
            lag_base,
            "ms",
            "< 100 ms",
            lag_ours < 100,
        ),
        Row(
            "triggers",
            f"worst loop lag vs plain httpx, {triggers:,} GETs at once",
            lag_ours,
            median([r["worst_lag"] for r in plain_runs]) * 1000,
            "ms",
        ),
        Row(
            "triggers",
            f"memory per trigger{at}",
            memory_ours,
            memory_base,
            "KiB",
            "< 10 KiB",
            memory_ours < 10,
        ),
        Row(
            "triggers",
            f"CPU per poll, first round{at}",
            median([r["cpu_per_poll"] for r in ours_runs]) * 1000,
            baseline["cpu_per_poll"] * 1000,
            "ms",
        ),
        Row(
            "triggers",
            f"worst loop lag, full GCs excluded{at}",
            median([r["worst_lag_without_collection"] for r in ours_runs]) * 1000,
            baseline["worst_lag_without_collection"] * 1000,
            "ms",
        ),
        Row(
            "triggers",
            f"objects tracked by the collector per trigger{at}",
            median([r["tracked_per_trigger"] for r in ours_runs]),
            baseline["tracked_per_trigger"],
            "objects",
        ),
        Row(
            "triggers",
            "objects tracked before the triggers start",
            median([r["tracked_before"] for r in ours_runs]),
            None,
            "objects",
        ),
        Row(
            "triggers",
            "longest full GC during the run",
            median([r["longest_collection"] for r in ours_runs]) * 1000,
            baseline["longest_collection"] * 1000,
            "ms",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--triggers", type=int, default=1000)
    parser.add_argument("--baseline-triggers", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--calls-per-client", type=int, default=None, help="status calls in flight per client"
    )
    args = parser.parse_args()
    rows = run(args.triggers, args.baseline_triggers, args.repeats, calls_per_client=args.calls_per_client)
    print(format_table(rows))


if __name__ == "__main__":
    main()
