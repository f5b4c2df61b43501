"""XAIBatchTrigger driven directly under asyncio against the emulator over loopback."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from support.batch_requests import jsonl_line
from support.emulator import connection_env
from waiting_support import seed_batch, seed_file_batch

from airflow_provider_xai_batch.client.pools import SmallPools, pool_sizes
from airflow_provider_xai_batch.hooks.xai import XAIBatchHook
from airflow_provider_xai_batch.triggers.batch import XAIBatchTrigger
from airflow_provider_xai_batch.triggers.client_pool import SHARED_CLIENTS, SharedClients
from airflow_provider_xai_batch.waiting import transient_backoff

FAST = 0.05  # seconds between polls in these tests


def run_trigger(trigger: XAIBatchTrigger, limit: float = 30.0) -> list[dict[str, Any]]:
    """Drain ``trigger.run()`` completely (as the triggerer would) and return every payload."""

    async def drain() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(asyncio.wait_for(drain(), limit))


async def collect(trigger: XAIBatchTrigger) -> list[dict[str, Any]]:
    return [event.payload async for event in trigger.run()]


async def polled(emulator: Any, times: int) -> None:
    """Return once the emulator has answered ``times`` polls (a condition, not a guess at timing)."""
    # The count lives in the emulator's thread, which has no event to await.
    while emulator.calls("get_batch") < times:  # noqa: ASYNC110
        await asyncio.sleep(0.01)


@pytest.fixture
def conn(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    # No retries inside the client, so injected faults reach the trigger's own tolerance.
    monkeypatch.setenv("AIRFLOW_CONN_XAI_WAIT", connection_env(emulator, max_retries=0))
    # The first lookup of a connection in a process loads much of Airflow; keep it out of timings.
    asyncio.run(_warm_up("xai_wait"))
    return "xai_wait"


async def _warm_up(conn_id: str) -> None:
    client = await XAIBatchHook(xai_conn_id=conn_id).get_async_conn()
    await client.aclose()


def test_processing_batch_completes_with_one_event(emulator: Any, manual_clock: Any, conn: str) -> None:
    emulator.config.update({"processing_rate": 10})
    batch_id = seed_batch(emulator, requests=5)

    async def finish_after_three_polls() -> list[dict[str, Any]]:
        running = asyncio.ensure_future(collect(XAIBatchTrigger(batch_id, conn, poll_interval=FAST)))
        await asyncio.wait_for(polled(emulator, 3), 10)
        waited = not running.done()  # still processing, so still waiting
        manual_clock.advance(1.0)  # past the 0.5 s that 5 requests take at 10 per second
        events = await asyncio.wait_for(running, 10)
        assert waited  # it really waited for processing
        return events

    events = asyncio.run(finish_after_three_polls())

    assert len(events) == 1
    [event] = events
    assert set(event) == {"status", "batch_id", "batch_status", "batch", "message", "error_kind", "progress"}
    assert event["error_kind"] is None
    assert (event["progress"]["done"], event["progress"]["percent"]) == (5, 100.0)  # the log's figures
    assert (event["status"], event["batch_id"], event["batch_status"]) == ("success", batch_id, "completed")
    assert event["batch"]["state"]["num_success"] == 5
    assert event["batch"]["status"] == "completed"
    assert emulator.calls("get_batch") >= 3
    assert emulator.calls("list_results") == 0  # never downloads results
    json.dumps(event)  # the payload is JSON-safe


def test_file_batch_rejected_by_xai_reports_its_message(emulator: Any, conn: str) -> None:
    batch_id = seed_file_batch(emulator, [jsonl_line("ok-1"), "{not json"])

    [event] = run_trigger(XAIBatchTrigger(batch_id, conn, poll_interval=FAST))

    assert (event["status"], event["batch_status"]) == ("success", "failed")
    assert "JSONL file validation failed: line 2" in event["message"]
    assert event["batch"]["cancel_by_xai_message"].startswith("JSONL file validation failed")


def test_cancelled_batch_ends_the_wait(emulator: Any, manual_clock: Any, conn: str) -> None:
    emulator.config.update({"processing_rate": 0.5})
    batch_id = seed_batch(emulator, requests=20)

    async def cancel_soon() -> dict[str, Any]:
        trigger = XAIBatchTrigger(batch_id, conn, poll_interval=FAST)
        waiting = asyncio.ensure_future(trigger.wait())
        await asyncio.wait_for(polled(emulator, 2), 10)
        assert not waiting.done()
        emulator.service.cancel_batch(batch_id)
        return await asyncio.wait_for(waiting, 10)

    event = asyncio.run(cancel_soon())
    assert (event["status"], event["batch_status"]) == ("success", "cancelled")
    assert event["batch"]["cancel_time"] is not None


def test_deadline_yields_timeout_with_last_known_batch(
    emulator: Any, manual_clock: Any, conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.config.update({"processing_rate": 0.1})
    batch_id = seed_batch(emulator, requests=50)
    asked: list[float] = []
    real_sleep = asyncio.sleep

    async def recorded_sleep(delay: float, result: Any = None) -> Any:
        asked.append(delay)
        return await real_sleep(delay, result)

    monkeypatch.setattr(asyncio, "sleep", recorded_sleep)
    [event] = run_trigger(XAIBatchTrigger(batch_id, conn, poll_interval=10.0, end_time=time.time() + 2.0))

    assert (event["status"], event["batch_status"]) == ("timeout", "processing")
    assert event["batch"]["state"]["num_pending"] > 0
    # Sleeps are cut at the deadline instead of waiting a whole 10 s poll interval (the time it
    # takes is measured in benchmarks/timings.py).
    assert asked and max(asked) <= 2.0
    assert emulator.calls("get_batch") == 2  # the first poll, and the last one right at the deadline


def test_deadline_already_past_still_polls_once(emulator: Any, conn: str) -> None:
    batch_id = seed_batch(emulator, requests=2)  # processing_rate 0: completed at once

    [event] = run_trigger(XAIBatchTrigger(batch_id, conn, poll_interval=FAST, end_time=time.time() - 5))

    assert (event["status"], event["batch_status"]) == ("success", "completed")


@pytest.mark.parametrize("status", [503, 429])
def test_transient_poll_errors_are_survived(emulator: Any, conn: str, status: int) -> None:
    batch_id = seed_batch(emulator, requests=2)
    emulator.faults.inject("get_batch", status=status, count=3)

    [event] = run_trigger(XAIBatchTrigger(batch_id, conn, poll_interval=FAST, max_transient_errors=3))

    assert (event["status"], event["batch_status"]) == ("success", "completed")
    assert emulator.answers(status, "get_batch") == 3


def test_too_many_transient_errors_end_with_an_error(emulator: Any, conn: str) -> None:
    batch_id = seed_batch(emulator, requests=2)
    emulator.faults.inject("get_batch", status=503, count=10)

    [event] = run_trigger(XAIBatchTrigger(batch_id, conn, poll_interval=FAST, max_transient_errors=2))

    assert event["status"] == "error"
    assert event["batch_id"] == batch_id
    assert emulator.answers(503, "get_batch") == 3  # the first try plus two tolerated
    assert "3 times in a row" in event["message"]
    assert event["error_kind"] == "transient"  # Airflow's retries apply


def test_unknown_batch_is_a_permanent_error_without_retrying(emulator: Any, conn: str) -> None:
    [event] = run_trigger(XAIBatchTrigger("batch_does_not_exist", conn, poll_interval=FAST))

    assert event["status"] == "error"
    assert (event["batch_status"], event["batch"]) == (None, None)
    assert "404" in event["message"]
    assert event["error_kind"] == "not_found"  # the task fails at once
    assert emulator.calls("get_batch") == 1


def test_wrong_key_is_a_permanent_error_and_never_shown(
    emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_id = seed_batch(emulator, requests=1)
    monkeypatch.setenv("AIRFLOW_CONN_XAI_BAD", connection_env(emulator, api_key="xai-wrong-key-987"))

    [event] = run_trigger(XAIBatchTrigger(batch_id, "xai_bad", poll_interval=FAST))

    assert (event["status"], event["error_kind"]) == ("error", "authentication")
    assert "xai-wrong-key-987" not in json.dumps(event)
    assert emulator.calls("get_batch") == 2  # one more try after reading the connection again


def test_a_key_rotated_during_the_wait_is_picked_up(
    emulator: Any, manual_clock: Any, conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.config.update({"processing_rate": 5})
    batch_id = seed_batch(emulator, requests=5)

    async def rotate_midway() -> dict[str, Any]:
        waiting = asyncio.ensure_future(XAIBatchTrigger(batch_id, conn, poll_interval=FAST).wait())
        await asyncio.wait_for(polled(emulator, 1), 10)  # mid-processing: the clock has not moved
        emulator.config.update({"api_key": "xai-rotated-key-456"})
        monkeypatch.setenv("AIRFLOW_CONN_XAI_WAIT", connection_env(emulator, max_retries=0))
        manual_clock.advance(2.0)  # past the 1 s that 5 requests take at 5 per second
        return await asyncio.wait_for(waiting, 10)

    event = asyncio.run(rotate_midway())
    assert (event["status"], event["batch_status"]) == ("success", "completed")
    assert emulator.answers(400, "get_batch") == 1


def test_missing_connection_is_an_error_event(emulator: Any) -> None:
    [event] = run_trigger(XAIBatchTrigger("batch_1", "xai_nowhere", poll_interval=FAST))

    assert event["status"] == "error"
    assert "xai_nowhere" in event["message"]


def test_serialize_round_trip_holds_no_secret(emulator: Any, conn: str) -> None:
    trigger = XAIBatchTrigger(
        "batch_42",
        conn,
        poll_interval=7,
        end_time=1_800_000_000.5,
        cancel_on_kill=True,
        max_transient_errors=4,
        progress_interval=30,
    )
    classpath, kwargs = trigger.serialize()

    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(__import__(module, fromlist=[name]), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs == {
        "batch_id": "batch_42",
        "xai_conn_id": conn,
        "poll_interval": 7.0,
        "end_time": 1_800_000_000.5,
        "cancel_on_kill": True,
        "max_transient_errors": 4,
        "progress_interval": 30.0,
        "outage_tolerance": 900.0,
    }
    assert all(isinstance(value, (str, int, float, bool)) for value in kwargs.values())
    text = json.dumps(kwargs) + repr(trigger)
    assert emulator.config.api_key not in text
    assert emulator.url not in text


def test_on_kill_cancels_only_when_asked(emulator: Any, conn: str) -> None:
    emulator.config.update({"processing_rate": 0.5})
    kept = seed_batch(emulator, requests=20, name="kept")
    killed = seed_batch(emulator, requests=20, name="killed")

    asyncio.run(XAIBatchTrigger(kept, conn, cancel_on_kill=False).on_kill())
    asyncio.run(XAIBatchTrigger(killed, conn, cancel_on_kill=True).on_kill())

    assert emulator.service.get_batch(kept)["cancel_time"] is None
    assert emulator.service.get_batch(killed)["cancel_time"] is not None
    assert emulator.calls("cancel_batch") == 1


def test_on_kill_leaves_a_finished_batch_alone(emulator: Any, conn: str) -> None:
    batch_id = seed_batch(emulator, requests=2)  # completed at once

    asyncio.run(XAIBatchTrigger(batch_id, conn, cancel_on_kill=True).on_kill())

    assert emulator.calls("cancel_batch") == 0
    assert emulator.service.get_batch(batch_id)["cancel_time"] is None


def test_backoff_grows_from_the_poll_interval_and_is_capped() -> None:
    exact = [transient_backoff(10, n, cap=100, jitter=lambda d: d) for n in range(1, 7)]
    assert exact == [10, 20, 40, 80, 100, 100]
    assert transient_backoff(900, 3, cap=100, jitter=lambda d: d) == 900  # never below the interval's cap
    assert all(10 <= transient_backoff(10, 1) <= 11 for _ in range(50))


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="poll_interval"):
        XAIBatchTrigger("batch_1", poll_interval=0)
    with pytest.raises(ValueError, match="max_transient_errors"):
        XAIBatchTrigger("batch_1", max_transient_errors=-1)


def test_waits_share_a_few_clients_and_the_last_user_closes_each() -> None:
    built: list[Any] = []

    class FakeClient:
        closed = False

        async def aclose(self) -> None:
            self.closed = True

    async def factory() -> Any:
        built.append(FakeClient())
        return built[-1]

    async def scenario() -> None:
        pool = SharedClients(waits_per_client=8)
        leases = [await pool.acquire("xai_default", factory) for _ in range(9)]
        assert len(built) == 2 and leases[0].client is leases[7].client is built[0]
        renewed = await pool.acquire("xai_default", factory, replacing=leases[0])
        assert renewed.client is built[2]  # clients built before an authentication failure are retired
        again = await pool.acquire("xai_default", factory, replacing=leases[8])
        assert again.client is built[2]  # someone already read the connection again
        for lease in [*leases, renewed, again]:
            await pool.release("xai_default", lease)
        assert all(client.closed for client in built)

    asyncio.run(scenario())


def test_waits_starting_together_build_their_clients_side_by_side() -> None:
    builds: list[Any] = []

    class FakeClient:
        async def aclose(self) -> None:
            pass

    async def scenario() -> None:
        go = asyncio.Event()

        async def factory() -> Any:
            builds.append(None)
            first = len(builds) == 1
            await go.wait()  # a connection look-up that takes a while
            if first:
                raise RuntimeError("connection not found")
            return FakeClient()

        pool = SharedClients(waits_per_client=8)
        waits = [asyncio.create_task(pool.acquire("xai_default", factory)) for _ in range(20)]
        for _ in range(5):
            await asyncio.sleep(0)
        # Every build needed is under way before any has finished: they no longer queue.
        assert len(builds) == 3
        go.set()
        outcomes = await asyncio.gather(*waits, return_exceptions=True)
        failed = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
        # The waits that joined the failed build all see its error; the others got a client.
        assert len(failed) == 8 and all("connection not found" in str(error) for error in failed)
        leases = [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
        assert len({id(lease.client) for lease in leases}) == 2
        # A failed build is not kept: the next wait joins the client with room (4 users) ...
        again = await pool.acquire("xai_default", factory)
        assert len(builds) == 3 and again.users == 5
        # ... and once every client is full, a new one is built.
        for _ in range(3):
            await pool.acquire("xai_default", factory)
        fresh = await pool.acquire("xai_default", factory)
        assert len(builds) == 4 and fresh.users == 1

    asyncio.run(scenario())


def test_the_waits_of_a_connection_share_one_client_and_a_few_calls_in_flight() -> None:
    built: list[Any] = []
    in_flight: list[int] = []

    class FakeClient:
        async def get_batch(self, batch_id: str) -> str:
            in_flight.append(1)
            peak.append(len(in_flight))
            for _ in range(3):  # an answer that takes a few turns of the loop
                await asyncio.sleep(0)
            in_flight.pop()
            return batch_id

        async def aclose(self) -> None:
            pass

    peak: list[int] = []

    async def factory() -> Any:
        built.append(FakeClient())
        return built[-1]

    async def scenario() -> list[Any]:
        pool = SharedClients(calls_per_client=3)
        leases = await asyncio.gather(*(pool.acquire("xai_default", factory) for _ in range(20)))
        assert len(built) == 1 and {id(lease) for lease in leases} == {id(leases[0])}
        return list(await asyncio.gather(*(lease.get_batch(f"batch_{n}") for n, lease in enumerate(leases))))

    assert asyncio.run(scenario()) == [f"batch_{n}" for n in range(20)]
    assert max(peak) == 3


def test_the_polling_client_has_a_connection_per_call_in_flight(conn: str) -> None:
    async def client_transport() -> tuple[int | None, Any]:
        client = await XAIBatchTrigger("batch_1", conn)._polling_client()
        try:
            return client.max_connections, client._http._transport
        finally:
            await client.aclose()

    connections, transport = asyncio.run(client_transport())

    assert connections == SHARED_CLIENTS.calls_per_client
    assert isinstance(transport, SmallPools)
    assert len(transport.pools) == len(pool_sizes(SHARED_CLIENTS.calls_per_client))


def test_a_failed_call_fails_only_its_wait_and_a_wait_cancelled_in_the_queue_is_never_sent() -> None:
    sent: list[str] = []

    class FakeClient:
        async def get_batch(self, batch_id: str) -> str:
            sent.append(batch_id)
            await asyncio.sleep(0)
            if batch_id == "batch_gone":
                raise RuntimeError("no such batch")
            return batch_id

        async def aclose(self) -> None:
            pass

    async def factory() -> Any:
        return FakeClient()

    async def scenario() -> list[Any]:
        pool = SharedClients(calls_per_client=1)
        lease = await pool.acquire("xai_default", factory)
        waits = [
            asyncio.ensure_future(lease.get_batch(name)) for name in ("batch_gone", "batch_2", "batch_3")
        ]
        await asyncio.sleep(0)  # the first call is under way; the other two queue behind it
        waits[1].cancel()
        return list(await asyncio.gather(*waits, return_exceptions=True))

    gone, cancelled, answered = asyncio.run(scenario())

    assert isinstance(gone, RuntimeError) and "no such batch" in str(gone)
    assert isinstance(cancelled, asyncio.CancelledError)
    assert answered == "batch_3"
    assert sent == ["batch_gone", "batch_3"]
