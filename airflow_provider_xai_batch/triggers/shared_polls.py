"""One status call for all the waits on the same batch in one triggerer.

Several deferred tasks often wait on one batch (a sensor and an operator of another DAG, or many
mapped tasks handed the same batch id). Each would poll it on its own schedule, and the service
would answer the same question several times per poll interval. :class:`SharedPolls` lets the
waits of one event loop share the answer: a poll joins a call for the same batch that is already
under way, and takes an answer that arrived less than ``fresh_for`` seconds ago instead of asking
again. A failed call fails every wait that joined it, and is not kept.

>>> async def poll(client, batch_id):  # doctest: +SKIP
...     return await SHARED_POLLS.get_batch(client, "xai_default", batch_id, fresh_for=30.0)
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["SHARED_POLLS", "SharedPolls"]

T = TypeVar("T")


@dataclass
class _Answer(Generic[T]):
    value: T
    at: float


class SharedAnswers(Generic[T]):
    """In-flight and recent answers per key, for one event loop: the pure part of the sharing.

    >>> import asyncio
    >>> calls = []
    >>> async def fetch():
    ...     calls.append(1)
    ...     await asyncio.sleep(0)
    ...     return "running"
    >>> async def main():
    ...     answers = SharedAnswers(clock=lambda: 0.0)
    ...     together = await asyncio.gather(*(answers.get("b1", fetch, fresh_for=10) for _ in range(3)))
    ...     later = await answers.get("b1", fetch, fresh_for=10)
    ...     return together, later
    >>> asyncio.run(main()), len(calls)
    ((['running', 'running', 'running'], 'running'), 1)
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._pending: dict[Any, asyncio.Future[T]] = {}
        self._recent: dict[Any, _Answer[T]] = {}
        self._next_sweep = -float("inf")

    async def get(self, key: Any, fetch: Callable[[], Awaitable[T]], *, fresh_for: float) -> T:
        now = self._clock()
        recent = self._recent.get(key)
        if recent is not None and now - recent.at < fresh_for:
            return recent.value
        pending = self._pending.get(key)
        if pending is not None:
            # ``shield``: one waiter being cancelled must not cancel the call the others share.
            return await asyncio.shield(pending)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            value = await fetch()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody joined
            raise
        else:
            future.set_result(value)
            self._recent[key] = _Answer(value, self._clock())
            self._forget_stale(fresh_for)
            return value
        finally:
            del self._pending[key]

    def _forget_stale(self, fresh_for: float) -> None:
        # Finished waits leave their last answer behind; drop those long past any use. At most one
        # sweep per ``fresh_for``: sweeping on every answer made a round of n polls cost n * n.
        now = self._clock()
        if now < self._next_sweep:
            return
        period = max(fresh_for, 1.0)
        self._next_sweep = now + period
        horizon = now - period * 4
        for key in [key for key, answer in self._recent.items() if answer.at < horizon]:
            del self._recent[key]


class SharedPolls:
    """Batch status calls shared by the waits of each event loop (each triggerer has one loop)."""

    def __init__(self) -> None:
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SharedAnswers[Any]] = (
            weakref.WeakKeyDictionary()
        )

    async def get_batch(self, client: Any, conn_id: str, batch_id: str, *, fresh_for: float) -> Any:
        """``client.get_batch(batch_id)``, shared with the other waits on ``batch_id`` in this loop."""
        answers = self._per_loop.setdefault(asyncio.get_running_loop(), SharedAnswers())
        return await answers.get((conn_id, batch_id), lambda: client.get_batch(batch_id), fresh_for=fresh_for)


SHARED_POLLS = SharedPolls()
