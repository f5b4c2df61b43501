from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_xai_batch.client import protocol
from airflow_provider_xai_batch.client.policy import ClientLimits, RetryPolicy, SlidingWindowLimiter
from airflow_provider_xai_batch.client.protocol import pack_add_calls


def no_jitter(delay: float) -> float:
    return delay


def test_backoff_grows_exponentially_and_is_capped() -> None:
    policy = RetryPolicy(initial_delay=0.5, max_delay=4.0, jitter=no_jitter)
    assert [policy.backoff(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_default_jitter_stays_within_half_and_full_delay() -> None:
    policy = RetryPolicy(initial_delay=1.0, max_delay=100.0)
    delays = [policy.backoff(3) for _ in range(200)]
    assert all(4.0 <= d <= 8.0 for d in delays)
    assert len(set(delays)) > 1


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(status: int) -> None:
    assert RetryPolicy(jitter=no_jitter).retry_delay(0, status_code=status) == 0.5


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 412, 413, 422])
def test_other_client_errors_are_never_retried(status: int) -> None:
    assert RetryPolicy().retry_delay(0, status_code=status) is None


def test_connection_errors_are_retried_until_the_budget_is_spent() -> None:
    policy = RetryPolicy(max_retries=2, jitter=no_jitter)
    assert policy.retry_delay(0) == 0.5
    assert policy.retry_delay(1) == 1.0
    assert policy.retry_delay(2) is None


def test_retry_after_overrides_the_computed_delay_only_when_present() -> None:
    policy = RetryPolicy(jitter=no_jitter)
    assert policy.retry_delay(0, status_code=429, retry_after=7.0) == 7.0
    assert policy.retry_delay(0, status_code=429, retry_after=None) == 0.5


def test_limiter_spaces_calls_across_the_rolling_window() -> None:
    limiter = SlidingWindowLimiter(limit=3, window=10.0, margin=0.0)
    waits = [limiter.reserve(now=t) for t in (0.0, 0.0, 0.0, 0.0, 5.0, 30.0)]
    assert waits == [0.0, 0.0, 0.0, 10.0, 5.0, 0.0]


def test_limiter_never_exceeds_the_limit_in_any_window() -> None:
    limiter = SlidingWindowLimiter(limit=5, window=1.0, margin=0.0)
    slots = [t + limiter.reserve(now=t) for t in [i * 0.01 for i in range(100)]]
    for start in slots:
        assert sum(1 for s in slots if start <= s < start + 1.0 - 1e-9) <= 5


def encoded(n: int, size: int = 50) -> list[tuple[str, bytes]]:
    return [
        (f"r{i}", json.dumps({"batch_request_id": f"r{i}", "pad": "x" * size}).encode()) for i in range(n)
    ]


def test_packing_respects_the_size_cap_and_keeps_order() -> None:
    items = encoded(100)
    calls = list(pack_add_calls(items, max_body_bytes=1000))
    assert len(calls) > 1
    assert all(len(call.body) <= 1000 for call in calls)
    ids = [r["batch_request_id"] for call in calls for r in json.loads(call.body)["batch_requests"]]
    assert ids == [i for i, _ in items]
    assert sum(call.count for call in calls) == 100


def test_packing_honours_a_request_count_cap() -> None:
    calls = list(pack_add_calls(encoded(10), max_body_bytes=10**6, max_requests=4))
    assert [c.count for c in calls] == [4, 4, 2]


def test_a_request_larger_than_any_call_is_refused() -> None:
    with pytest.raises(ValueError, match="r0"):
        list(pack_add_calls(encoded(1, size=2000), max_body_bytes=1000))


def test_packing_is_lazy() -> None:
    def endless():  # a generator that never ends must still yield calls
        i = 0
        while True:
            yield (f"r{i}", b'{"a":1}')
            i += 1

    first = next(pack_add_calls(endless(), max_body_bytes=100))
    assert first.count > 0


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=300), max_size=60),
    cap=st.integers(min_value=330, max_value=2000),
)
def test_packing_never_exceeds_the_cap_nor_drops_or_reorders(sizes: list[int], cap: int) -> None:
    items = [(f"id{i}", b'"' + b"x" * size + b'"') for i, size in enumerate(sizes)]
    calls = list(pack_add_calls(items, max_body_bytes=cap))
    assert all(len(call.body) == call.size <= cap for call in calls)
    bodies = [value for call in calls for value in json.loads(call.body)["batch_requests"]]
    assert bodies == [json.loads(body) for _, body in items]
    assert [call.request_body(k) for call in calls for k in range(call.count)] == [body for _, body in items]


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(min_value=1, max_value=50), min_size=2, max_size=40))
def test_splitting_a_call_keeps_every_request_once_and_in_order(sizes: list[int]) -> None:
    items = [(f"id{i}", b'"' + b"x" * size + b'"') for i, size in enumerate(sizes)]
    (call,) = pack_add_calls(items, max_body_bytes=10_000)
    pending, leaves = [call], []
    while pending:
        part = pending.pop()
        if part.count == 1:
            leaves.append(part)
            continue
        first, second = part.split()
        assert first.count + second.count == part.count and abs(first.count - second.count) <= 1
        assert all(len(half.body) == half.size for half in (first, second))
        assert (
            json.loads(first.body)["batch_requests"] + json.loads(second.body)["batch_requests"]
            == (json.loads(part.body)["batch_requests"])
        )
        pending += [second, first]
    assert [leaf.request_body(0) for leaf in leaves] == [body for _, body in items]


def test_pages_end_on_null_empty_or_absent_tokens() -> None:
    assert protocol.parse_page({"results": [1], "pagination_token": "abc"}, "results") == ([1], "abc")
    assert protocol.parse_page({"results": [1], "pagination_token": None}, "results") == ([1], None)
    assert protocol.parse_page({"results": []}, "results") == ([], None)
    assert protocol.parse_page({"data": [2]}, "batches", "data") == ([2], None)


def test_cancel_uses_the_colon_route_and_create_is_not_resend_safe() -> None:
    assert protocol.cancel_batch_call("batch_1").path == "/v1/batches/batch_1:cancel"
    assert protocol.create_batch_call("n").resend_safe is False
    packed = next(pack_add_calls([("a", b"{}")], max_body_bytes=100))
    assert protocol.add_requests_call("b", packed).resend_safe is True
    assert protocol.list_call("/v1/batches", 5, None).params == {"limit": 5}
    assert protocol.list_call("/v1/batches", 5, "t").params == {"limit": 5, "pagination_token": "t"}


def test_ids_with_slashes_are_refused_in_paths() -> None:
    with pytest.raises(ValueError):
        protocol.get_batch_call("../files")


def test_limits_from_a_connection_extra_ignore_unknown_keys() -> None:
    limits = ClientLimits.from_mapping({"add_calls": 50, "timeout": 3, "max_add_call_bytes": 1000})
    assert (limits.add_calls, limits.max_add_call_bytes, limits.create_calls) == (50, 1000, 2)


class PacedSender:
    """A sender that is busy with each call for ``busy_for`` requests' worth of packing time."""

    def __init__(self, busy_for: int) -> None:
        self.busy_for = busy_for
        self.packed = 0
        self.busy_until = 0

    def requests(self, count: int, size: int) -> Iterator[tuple[str, bytes]]:
        for i in range(count):
            self.packed += 1
            yield (f"r{i}", b'"' + b"x" * size + b'"')

    def idle(self) -> bool:
        return self.packed >= self.busy_until

    def sizes(self, count: int, size: int, *, first: int, cap: int) -> list[int]:
        sizes = []
        for call in pack_add_calls(
            self.requests(count, size), max_body_bytes=cap, first_body_bytes=first, sender_idle=self.idle
        ):
            sizes.append(call.size)
            self.busy_until = self.packed + self.busy_for
        return sizes


@pytest.fixture
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(protocol, "CHUNK_BYTES", 1_000)
    return 1_000


def test_a_slow_sender_gets_full_calls_after_the_first(small_pieces: int) -> None:
    sizes = PacedSender(busy_for=10**9).sizes(2_000, 98, first=1_000, cap=50_000)
    assert sizes[0] < 2_000
    assert all(size > 49_000 for size in sizes[1:-1])
    assert len(sizes) == 6


def test_a_sender_that_is_never_busy_gets_calls_that_double(small_pieces: int) -> None:
    sizes = PacedSender(busy_for=0).sizes(2_000, 98, first=1_000, cap=50_000)
    assert sizes[:6] == sorted(sizes[:6])
    assert all(2 * before <= after < 2 * before + 1_200 for before, after in itertools.pairwise(sizes[:5]))
    assert max(sizes) > 49_000


def test_calls_grow_by_what_is_packed_while_the_one_before_is_sent_and_at_least_double(
    small_pieces: int,
) -> None:
    # The first call keeps the sender busy for 300 requests (about 30 KB) of packing: the second
    # call is those 30 KB; later calls, sent as briefly, still double until the cap.
    sizes = PacedSender(busy_for=300).sizes(3_000, 98, first=1_000, cap=100_000)
    assert sizes[0] < 2_000
    assert 29_000 < sizes[1] < 32_000
    assert 2 * sizes[1] <= sizes[2] < 2 * sizes[1] + 1_200
    assert sizes[3] > 99_000


@settings(max_examples=100, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=300), max_size=80),
    cap=st.integers(min_value=330, max_value=3000),
    idle=st.lists(st.booleans(), min_size=1, max_size=20),
)
def test_sized_by_the_sender_packing_never_exceeds_the_cap_nor_drops_or_reorders(
    sizes: list[int], cap: int, idle: list[bool]
) -> None:
    answers = iter(idle * 100)
    items = [(f"id{i}", b'"' + b"x" * size + b'"') for i, size in enumerate(sizes)]
    calls = list(
        pack_add_calls(items, max_body_bytes=cap, first_body_bytes=400, sender_idle=lambda: next(answers))
    )
    assert all(len(call.body) == call.size <= cap for call in calls)
    assert [call.request_body(k) for call in calls for k in range(call.count)] == [body for _, body in items]
