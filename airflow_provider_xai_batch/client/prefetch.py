"""Run a producer iterator one step ahead in a thread, so encoding overlaps with network waits."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_DONE = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class Prefetcher(Generic[T]):
    """Iterate ``source`` in a background thread, at most ``depth`` items ahead of the consumer.

    The producer starts on an item only when there is room for it, so at most ``depth`` items
    exist that the consumer has not taken, the one being made included. Items are add calls of
    up to 25 MB: with a queue of one and the producer making the next item before waiting for
    room, a third call would sit in memory beside the one being sent and the one queued, for no
    gain (the next call is made while the current one is sent either way).

    ``consumer_waiting`` is set while the consumer waits for the next item (one not made yet):
    a producer handed the same event can make that item smaller and hand it over sooner.

    Exceptions raised by ``source`` reach the consumer at the point they happened; stopping
    early (``close()``, or leaving a ``with`` block) stops the producer without draining it.

    >>> with Prefetcher(iter(range(3))) as items:
    ...     list(items)
    [0, 1, 2]
    """

    def __init__(
        self, source: Iterator[T], *, depth: int = 1, consumer_waiting: threading.Event | None = None
    ) -> None:
        self._source = source
        # Set while the consumer waits for an item: a producer may ask it to size what it makes.
        self.consumer_waiting = consumer_waiting or threading.Event()
        self._queue: queue.Queue[object] = queue.Queue()
        self._room = threading.Semaphore(depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="xai-batch-prefetch", daemon=True)
        self._thread.start()

    def _wait_for_room(self) -> bool:
        while not self._stop.is_set():
            if self._room.acquire(timeout=0.1):
                return True
        return False

    def _produce(self) -> None:
        try:
            while self._wait_for_room():
                try:
                    item = next(self._source)
                except StopIteration:
                    self._queue.put(_DONE)
                    return
                self._queue.put(item)
        except BaseException as error:  # handed to the consumer, raised there
            self._queue.put(_Failure(error))

    def __iter__(self) -> Iterator[T]:
        while True:
            self.consumer_waiting.set()
            item = self._queue.get()
            self.consumer_waiting.clear()
            self._room.release()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> Prefetcher[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
