"""Identical repeats in the input count once, as the batch holds them once; memory stays small."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from support.constants import TEST_API_KEY

from airflow_provider_xai_batch.client import (
    AsyncXAIBatchClient,
    ClientLimits,
    LocatedRequest,
    XAIBatchClient,
)
from airflow_provider_xai_batch.client.seen_ids import SeenIds
from airflow_provider_xai_batch.emulator import EmulatorServer


def chat(i: int) -> dict[str, Any]:
    return {
        "custom_id": f"r-{i}",
        "body": {"model": "grok-4.3", "messages": [{"role": "user", "content": f"{i}"}]},
    }


@given(st.lists(st.text(max_size=6), max_size=300))
def test_seen_ids_answers_like_a_set(ids: list[str]) -> None:
    seen, reference = SeenIds(capacity=2), set()
    for request_id in ids:
        assert seen.add(request_id) is (request_id not in reference)
        reference.add(request_id)
    assert len(seen) == len(reference)


def test_seen_ids_cost_at_most_32_bytes_an_id() -> None:
    seen = SeenIds()
    for i in range(100_000):
        seen.add(f"input.jsonl-1f2e3d4c-line-{i}")
    assert len(seen) == 100_000
    assert sys.getsizeof(seen._table) / len(seen) <= 32


def test_identical_repeats_are_counted_once(emulator: EmulatorServer) -> None:
    located = [LocatedRequest(chat(9), "in.jsonl", "line 1"), LocatedRequest(chat(9), "in.jsonl", "line 2")]
    requests = [chat(0), chat(1), chat(0), chat(2), chat(1), chat(1), *located]
    with XAIBatchClient(
        TEST_API_KEY, base_url=emulator.url, limits=ClientLimits(max_requests_per_call=2)
    ) as client:
        batch = client.create_batch("repeats")
        assert client.add_requests(batch.batch_id, requests) == 4
        assert client.get_batch(batch.batch_id).state.num_requests == 4

    async def again() -> int:
        async with AsyncXAIBatchClient(TEST_API_KEY, base_url=emulator.url) as aclient:
            other = await aclient.create_batch("repeats-async")
            return await aclient.add_requests(other.batch_id, iter(requests))

    assert asyncio.run(again()) == 4
