"""An async client with many connections keeps them in small pools, over a real loopback socket."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from support.constants import TEST_API_KEY

from airflow_provider_xai_batch.client import AsyncXAIBatchClient, Batch
from airflow_provider_xai_batch.client.pools import CONNECTIONS_PER_POOL, SmallPools, pool_sizes


@pytest.mark.parametrize("connections", [1, 7, 8, 9, 20, 50, 64, 101])
def test_connections_are_split_evenly_into_pools_no_larger_than_the_limit(connections: int) -> None:
    sizes = pool_sizes(connections)

    assert sum(sizes) == connections
    assert max(sizes) <= CONNECTIONS_PER_POOL
    assert max(sizes) - min(sizes) <= 1


def test_no_connections_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        pool_sizes(0)
    with pytest.raises(ValueError, match="max_connections"):
        AsyncXAIBatchClient(TEST_API_KEY, max_connections=0)


def test_a_client_without_a_connection_count_keeps_httpxs_own_pool() -> None:
    async def transport() -> Any:
        async with AsyncXAIBatchClient(TEST_API_KEY) as client:
            return client._http._transport

    assert not isinstance(asyncio.run(transport()), SmallPools)


def test_many_calls_at_once_use_every_small_pool_and_keep_their_connections(emulator: Any) -> None:
    emulator.config.update({"latency_ms": 50})  # long enough that the calls overlap
    batch_id = emulator.service.create_batch("pools")["batch_id"]

    async def scenario() -> tuple[list[Batch], list[int]]:
        async with AsyncXAIBatchClient(TEST_API_KEY, base_url=emulator.url, max_connections=20) as client:
            transport = client._http._transport
            assert isinstance(transport, SmallPools)
            batches = await asyncio.gather(*(client.get_batch(batch_id) for _ in range(60)))
            # Kept alive for the next round of calls, not closed down to httpx's usual 20 per pool.
            open_connections = [len(pool._pool.connections) for pool in transport.pools]
        return list(batches), open_connections

    batches, open_connections = asyncio.run(scenario())

    assert [batch.batch_id for batch in batches] == [batch_id] * 60
    assert open_connections == pool_sizes(20) == [7, 7, 6]
