"""The prefetcher keeps at most ``depth`` items made ahead, keeps order and hands errors over."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from airflow_provider_xai_batch.client.prefetch import Prefetcher


class CountingSource:
    """An iterator of 0..n-1 that records how many items it has made, and can be told to fail."""

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.made = 0
        self._count = count
        self._fail_at = fail_at
        self.changed = threading.Condition()

    def __iter__(self) -> Iterator[int]:
        return self

    def __next__(self) -> int:
        if self.made == self._fail_at:
            raise ValueError(f"item {self.made} cannot be made")
        if self.made >= self._count:
            raise StopIteration
        with self.changed:
            self.made += 1
            self.changed.notify_all()
        return self.made - 1

    def wait_until_made(self, count: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.made >= count, timeout=10), self.made


def test_items_arrive_in_order() -> None:
    with Prefetcher(CountingSource(50)) as items:
        assert list(items) == list(range(50))


@pytest.mark.parametrize("depth", [1, 2])
def test_no_more_than_depth_items_are_made_ahead(depth: int) -> None:
    source = CountingSource(10)
    with Prefetcher(source, depth=depth) as prefetcher:
        items = iter(prefetcher)
        source.wait_until_made(depth)
        # The producer has had every chance to run on; it must be waiting for room, not making more.
        threading.Event().wait(0.3)
        assert source.made == depth
        assert next(items) == 0
        source.wait_until_made(depth + 1)
        threading.Event().wait(0.3)
        assert source.made == depth + 1


def test_an_error_reaches_the_consumer_after_the_items_before_it() -> None:
    with Prefetcher(CountingSource(10, fail_at=3)) as prefetcher:
        items = iter(prefetcher)
        assert [next(items) for _ in range(3)] == [0, 1, 2]
        with pytest.raises(ValueError, match="item 3 cannot be made"):
            next(items)


def test_leaving_early_stops_the_producer() -> None:
    source = CountingSource(1_000)
    with Prefetcher(source) as prefetcher:
        assert next(iter(prefetcher)) == 0
    made = source.made
    threading.Event().wait(0.3)
    assert source.made == made <= 2


def test_the_producer_can_see_when_the_consumer_waits_for_an_item() -> None:
    consumer_waiting = threading.Event()
    seen_waiting: list[bool] = []

    def source() -> Iterator[int]:
        for item in range(3):
            # Made only once the consumer waits for it; without the signal this gives up after 10 s.
            seen_waiting.append(consumer_waiting.wait(timeout=10))
            yield item

    with Prefetcher(source(), consumer_waiting=consumer_waiting) as items:
        assert list(items) == [0, 1, 2]
    assert seen_waiting == [True, True, True]
