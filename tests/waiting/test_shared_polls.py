"""Waits on the same batch in one triggerer share one status call; other batches are never mixed in."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from support.emulator import connection_env
from waiting_support import seed_batch

from airflow_provider_xai_batch.hooks.xai import XAIBatchHook
from airflow_provider_xai_batch.triggers.batch import XAIBatchTrigger
from airflow_provider_xai_batch.triggers.shared_polls import SharedAnswers

# Longer than the waits take to start together: within one interval they must share one call.
INTERVAL = 5.0


@pytest.fixture
def conn(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_XAI_SHARED", connection_env(emulator, max_retries=0))
    asyncio.run(_warm_up("xai_shared"))
    return "xai_shared"


async def _warm_up(conn_id: str) -> None:
    client = await XAIBatchHook(xai_conn_id=conn_id).get_async_conn()
    await client.aclose()


def wait_all(triggers: list[XAIBatchTrigger]) -> list[dict[str, Any]]:
    """Run the waits together on one loop, as one triggerer does."""

    async def together() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(trigger.wait() for trigger in triggers)))

    return asyncio.run(asyncio.wait_for(together(), 60))


def test_waits_on_one_batch_share_one_status_call(emulator: Any, conn: str) -> None:
    batch_id = seed_batch(emulator, requests=3)

    events = wait_all([XAIBatchTrigger(batch_id, conn, poll_interval=INTERVAL) for _ in range(25)])

    assert [event["status"] for event in events] == ["success"] * 25
    assert {event["batch_id"] for event in events} == {batch_id}
    assert all(event["batch"]["state"]["num_success"] == 3 for event in events)
    assert emulator.calls("get_batch") == 1


def test_waits_on_different_batches_each_get_their_own_batch(emulator: Any, conn: str) -> None:
    batch_ids = [seed_batch(emulator, requests=index + 1, name=f"b{index}") for index in range(5)]

    events = wait_all([XAIBatchTrigger(batch_id, conn, poll_interval=INTERVAL) for batch_id in batch_ids * 3])

    assert [event["batch_id"] for event in events] == batch_ids * 3
    assert [event["batch"]["state"]["num_requests"] for event in events] == [1, 2, 3, 4, 5] * 3
    assert emulator.calls("get_batch") == 5


def test_a_failed_poll_fails_every_wait_that_joined_it_and_is_not_kept() -> None:
    calls: list[int] = []

    async def fetch() -> str:
        calls.append(1)
        await asyncio.sleep(0.01)
        if len(calls) == 1:
            raise ConnectionError("service unavailable")
        return "completed"

    async def scenario() -> tuple[list[object], str]:
        answers: SharedAnswers[str] = SharedAnswers()
        joined = await asyncio.gather(
            *(answers.get("batch", fetch, fresh_for=60.0) for _ in range(5)), return_exceptions=True
        )
        return list(joined), await answers.get("batch", fetch, fresh_for=60.0)

    joined, retried = asyncio.run(scenario())
    assert all(isinstance(outcome, ConnectionError) for outcome in joined)
    assert retried == "completed"  # the failure was not kept: the next poll asked again
    assert len(calls) == 2


def test_a_waiter_cancelled_mid_call_leaves_the_shared_call_to_the_others() -> None:
    calls: list[int] = []

    async def fetch() -> str:
        calls.append(1)
        await asyncio.sleep(0.05)
        return "completed"

    async def scenario() -> tuple[list[str], bool]:
        answers: SharedAnswers[str] = SharedAnswers()
        first = asyncio.ensure_future(answers.get("batch", fetch, fresh_for=1.0))
        await asyncio.sleep(0)
        others = [asyncio.ensure_future(answers.get("batch", fetch, fresh_for=1.0)) for _ in range(3)]
        await asyncio.sleep(0)
        others[0].cancel()
        done = await asyncio.gather(first, *others[1:])
        return list(done), others[0].cancelled()

    done, cancelled = asyncio.run(scenario())
    assert done == ["completed"] * 3
    assert cancelled
    assert len(calls) == 1


def test_an_answer_older_than_fresh_for_is_asked_again() -> None:
    now = [0.0]
    calls: list[int] = []

    async def fetch() -> int:
        calls.append(1)
        return len(calls)

    async def scenario() -> list[int]:
        answers: SharedAnswers[int] = SharedAnswers(clock=lambda: now[0])
        seen = [await answers.get("b", fetch, fresh_for=5.0)]
        now[0] = 4.9
        seen.append(await answers.get("b", fetch, fresh_for=5.0))
        now[0] = 5.0
        seen.append(await answers.get("b", fetch, fresh_for=5.0))
        return seen

    assert asyncio.run(scenario()) == [1, 1, 2]
