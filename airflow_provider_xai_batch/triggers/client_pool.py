"""Polling clients shared by the waits on one event loop: :data:`SHARED_CLIENTS`.

Building a client costs tens of milliseconds of CPU (httpx loads the TLS trust store), which
hundreds of triggers starting together would each pay on the triggerer's loop. Sharing pays it
once per ``waits_per_client`` waits; keeping that number small keeps each connection pool small,
because httpcore's pool bookkeeping grows with its connections times its queued calls.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import weakref
from collections.abc import Awaitable, Callable

from airflow_provider_xai_batch.client import AsyncXAIBatchClient

# New waits get a client built at most this long ago, so connection edits reach them.
SHARED_CLIENT_MAX_AGE_SECONDS = 300.0
# Waits per shared client: few enough that httpcore's per-call pool bookkeeping stays cheap.
WAITS_PER_CLIENT = 8


@dataclasses.dataclass(eq=False)
class SharedClient:
    """One client (possibly still being built) and how many waits are using it."""

    building: asyncio.Future[AsyncXAIBatchClient]
    created: float
    users: int = 0

    @property
    def client(self) -> AsyncXAIBatchClient:
        """The built client; :meth:`SharedClients.acquire` returns only once it is."""
        return self.building.result()

    @property
    def failed(self) -> bool:
        return self.building.done() and (self.building.cancelled() or self.building.exception() is not None)


class SharedClients:
    """Clients shared by the waits on one event loop that use the same connection.

    The last user of a client closes it.

    >>> async def poll_once(factory):  # doctest: +SKIP
    ...     shared = await SHARED_CLIENTS.acquire("xai_default", factory)
    ...     try:
    ...         return await shared.client.get_batch("batch_1")
    ...     finally:
    ...         await SHARED_CLIENTS.release("xai_default", shared)
    """

    def __init__(
        self, waits_per_client: int = WAITS_PER_CLIENT, max_age: float = SHARED_CLIENT_MAX_AGE_SECONDS
    ) -> None:
        self.waits_per_client = waits_per_client
        self.max_age = max_age
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
        shared = next((item for item in live if item.users < self.waits_per_client), None)
        if shared is None:
            shared = SharedClient(asyncio.ensure_future(factory()), now)
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
