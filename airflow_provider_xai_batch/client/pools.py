"""Many connections for one async client, in small pools: :class:`SmallPools`.

httpcore's connection pool walks all its connections whenever a call starts or ends, and for each
idle one asks the socket whether the server closed it (a system call and a dictionary built by
anyio), then counts every connection again. That is cheap for the few connections a pool usually
holds, and quadratic for many: one pool of 50 busy connections spent over 2 ms of CPU per call,
more than the call itself. :class:`SmallPools` gives one ``httpx.AsyncClient`` as many connections
as asked for, in pools of at most :data:`CONNECTIONS_PER_POOL`, taken in turn, so each call costs
what it costs in a small pool.

>>> from airflow_provider_xai_batch.client.base import shared_ssl_context
>>> async def main() -> None:  # doctest: +SKIP
...     transport = SmallPools(50, verify=shared_ssl_context())
...     async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8787") as http:
...         await http.get("/v1/batches/batch_1")
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import httpx

# Small enough that httpcore's per-call walk over a pool's connections stays a few microseconds.
CONNECTIONS_PER_POOL = 8


def pool_sizes(connections: int, per_pool: int = CONNECTIONS_PER_POOL) -> list[int]:
    """``connections`` split as evenly as possible into pools of at most ``per_pool``.

    >>> pool_sizes(50), pool_sizes(8), pool_sizes(1)
    ([8, 7, 7, 7, 7, 7, 7], [8], [1])
    """
    if connections < 1 or per_pool < 1:
        raise ValueError("connections and per_pool must be at least 1")
    pools = math.ceil(connections / per_pool)
    base, extra = divmod(connections, pools)
    return [base + 1 if index < extra else base for index in range(pools)]


class SmallPools(httpx.AsyncBaseTransport):
    """An httpx transport of ``connections`` connections in small pools, used in turn.

    Each pool keeps all its connections alive between calls (httpx keeps 20 per pool by default,
    closing and reopening the rest on every call once more are busy). ``options`` go to each
    :class:`httpx.AsyncHTTPTransport` (``verify``, ``http2``, ...).
    """

    def __init__(self, connections: int, *, per_pool: int = CONNECTIONS_PER_POOL, **options: Any) -> None:
        self.pools = [
            httpx.AsyncHTTPTransport(
                limits=httpx.Limits(max_connections=size, max_keepalive_connections=size), **options
            )
            for size in pool_sizes(connections, per_pool)
        ]
        self._turns = itertools.cycle(self.pools)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # In turn rather than "least busy": a busy pool queues the call, which costs it little.
        return await next(self._turns).handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self.pools:
            await pool.aclose()
