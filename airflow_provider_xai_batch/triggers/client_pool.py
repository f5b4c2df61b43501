"""Polling clients shared by the waits on one event loop: :data:`SHARED_CLIENTS`.

Building a client costs a connection look-up (in a worker thread) and a client set-up, and each
client keeps its own pool of connections. All the waits of one connection on one event loop share
one client, whose calls in flight are bounded by :data:`CALLS_PER_CLIENT`: the rest queue here, in
FIFO order, before any of their request is built.

Why a bound rather than more clients: httpcore's pool walks its connections for every call that
starts or ends, and its queued calls for each of those, so one pool with a thousand calls in flight
costs a thousand times a thousand steps per round. A thousand waits used to share 125 clients of
8 instead; each opened its own connections, and the thousand sockets, their locks and buffers were
most of what a wait cost in memory. With the bound, a round of polls reuses a few dozen connections
(in small pools: :mod:`~airflow_provider_xai_batch.client.pools`), a turn of the loop handles only
as many answers as there are calls in flight, and what is alive at once (and so what the garbage
collector sees survive) stays small.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import time
import weakref
from collections.abc import Awaitable, Callable

from airflow_provider_xai_batch.client import AsyncXAIBatchClient, Batch

# New waits get a client built at most this long ago, so connection edits reach them.
SHARED_CLIENT_MAX_AGE_SECONDS = 300.0
# Calls in flight per shared client, and so its connections. One turn of the loop handles every
# answer that is in, 1-2 ms each: 100 in flight held the loop for 480 ms at a time (load 5), while a
# round of 1,000 polls finished no sooner than with 32. With 32 on a busier machine the round took
# 1.4x as long as 1,000 plain GETs at once. On a quiet machine (medians of three, same run, 100 ms
# answers) 64 took 1.20x as long, 80 0.99x and 96 0.91x, for 10.3, 10.6 and 10.9 KiB of memory per
# wait of 1,000 and the same worst lag (a full garbage collection's): 80 has the round with room.
CALLS_PER_CLIENT = 80


@dataclasses.dataclass(eq=False)
class SharedClient:
    """One client (possibly still being built), how many waits use it, and its calls in flight."""

    building: asyncio.Future[AsyncXAIBatchClient]
    created: float
    users: int = 0
    calls: int = CALLS_PER_CLIENT
    _queue: collections.deque[tuple[str, asyncio.Future[Batch]]] = dataclasses.field(
        default_factory=collections.deque
    )
    _senders: set[asyncio.Future[None]] = dataclasses.field(default_factory=set)

    @property
    def client(self) -> AsyncXAIBatchClient:
        """The built client; :meth:`SharedClients.acquire` returns only once it is."""
        return self.building.result()

    async def get_batch(self, batch_id: str) -> Batch:
        """``client.get_batch``, sent as soon as one of the client's ``calls`` senders is free."""
        answer: asyncio.Future[Batch] = asyncio.get_running_loop().create_future()
        self._queue.append((batch_id, answer))
        if len(self._senders) < self.calls:
            sender = asyncio.ensure_future(self._send_queued())
            self._senders.add(sender)
            sender.add_done_callback(self._senders.discard)
        return await answer

    async def _send_queued(self) -> None:
        # A sender starts the next queued call in the same step of the loop that brought the
        # previous answer: with a semaphore instead, each slot idled a turn of the loop (tens of
        # milliseconds on a busy triggerer) between one wait's call and the next.
        while self._queue:
            batch_id, answer = self._queue.popleft()
            if answer.done():  # its wait was cancelled while it queued
                continue
            try:
                batch = await self.client.get_batch(batch_id)
            except Exception as error:
                if not answer.done():
                    answer.set_exception(error)
            except BaseException:
                answer.cancel()
                raise
            else:
                if not answer.done():
                    answer.set_result(batch)

    @property
    def failed(self) -> bool:
        return self.building.done() and (self.building.cancelled() or self.building.exception() is not None)


class SharedClients:
    """Clients shared by the waits on one event loop that use the same connection.

    The last user of a client closes it. Clients are built by the caller's ``factory``, which
    should bound the client's connections to ``calls_per_client`` (``max_connections``).

    >>> async def poll_once(factory):  # doctest: +SKIP
    ...     shared = await SHARED_CLIENTS.acquire("xai_default", factory)
    ...     try:
    ...         return await shared.client.get_batch("batch_1")
    ...     finally:
    ...         await SHARED_CLIENTS.release("xai_default", shared)
    """

    def __init__(
        self,
        waits_per_client: int | None = None,
        max_age: float = SHARED_CLIENT_MAX_AGE_SECONDS,
        calls_per_client: int = CALLS_PER_CLIENT,
    ) -> None:
        # None: every wait of a connection shares one client (its calls bounded by its senders).
        self.waits_per_client = waits_per_client
        self.max_age = max_age
        self.calls_per_client = calls_per_client
        self._live: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, list[SharedClient]]] = (
            weakref.WeakKeyDictionary()
        )

    async def acquire(
        self,
        key: str,
        factory: Callable[[], Awaitable[AsyncXAIBatchClient]],
        *,
        replacing: SharedClient | None = None,
    ) -> SharedClient:
        """A live client for ``key`` with room for one more wait, built by ``factory`` if needed.

        ``replacing`` (a client that just failed to authenticate) is retired with every other live
        client of ``key``, so the connection is read again; if another wait already did that, the
        fresh client is reused.
        """
        live = self._live.setdefault(asyncio.get_running_loop(), {}).setdefault(key, [])
        # Nothing below awaits until the wait has its place: on one event loop that is atomic, so
        # no lock is needed, and waits starting together join a client whose build is under way.
        # Builds used to queue one after another behind a lock, each a connection look-up: a
        # thousand waits starting at once spent most of their first poll round in that queue.
        # Retired clients leave the list; their last user closes them. A client that failed to
        # authenticate retires its siblings too: they were all built from the same connection.
        if any(item is replacing for item in live):
            live.clear()
        now = time.monotonic()
        live[:] = [item for item in live if now - item.created <= self.max_age and not item.failed]
        room = self.waits_per_client
        shared = next((item for item in live if room is None or item.users < room), None)
        if shared is None:
            shared = SharedClient(asyncio.ensure_future(factory()), now, calls=self.calls_per_client)
            live.append(shared)
        shared.users += 1
        try:
            # ``shield``: one wait being cancelled must not cancel the build the others share.
            await asyncio.shield(shared.building)
        except BaseException:
            shared.users -= 1
            if shared.failed or shared.users == 0:
                if shared in live:
                    live.remove(shared)
                if shared.users == 0:
                    shared.building.add_done_callback(_close_unused)
            raise
        return shared

    async def release(self, key: str, shared: SharedClient) -> None:
        """Stop using ``shared``; the last user closes it."""
        shared.users -= 1
        if shared.users > 0:
            return
        live = self._live.get(asyncio.get_running_loop(), {}).get(key, [])
        if shared in live:
            live.remove(shared)
        await shared.client.aclose()


# Closes under way, held so that the loop does not drop them half done.
_CLOSING: set[asyncio.Future[None]] = set()


def _close_unused(building: asyncio.Future[AsyncXAIBatchClient]) -> None:
    # A build whose every wait was cancelled: close what it built, if anything.
    if not building.cancelled() and building.exception() is None:
        closing = asyncio.ensure_future(building.result().aclose())
        _CLOSING.add(closing)
        closing.add_done_callback(_CLOSING.discard)


SHARED_CLIENTS = SharedClients()
