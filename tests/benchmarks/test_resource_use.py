"""What the benchmarks found costly, pinned down: memory that grew with a batch, CPU per client,
an add pipeline that waited for a full 25 MB call before sending anything.

Both are deterministic checks (object lifetimes, object identity), not timings.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.constants import TEST_API_KEY

from airflow_provider_xai_batch.client import AsyncXAIBatchClient, ClientLimits, XAIBatchClient
from airflow_provider_xai_batch.client.base import FIRST_ADD_CALL_BYTES, shared_ssl_context
from airflow_provider_xai_batch.client.protocol import BodyChunks


@pytest.fixture
def paused_collector() -> Iterator[None]:
    # The cyclic collector seldom runs during an export; switched off, it cannot hide a cycle.
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_result_pages_are_freed_as_soon_as_they_are_dropped(emulator: Any, paused_collector: None) -> None:
    limits = ClientLimits(create_calls=None, add_calls=None)
    with XAIBatchClient(TEST_API_KEY, base_url=emulator.url, limits=limits) as client:
        batch = client.create_batch("pages")
        requests = (
            {
                "custom_id": f"r{i}",
                "body": {"model": "grok-4.3", "messages": [{"role": "user", "content": "q"}]},
            }
            for i in range(30)
        )
        client.add_requests(batch.batch_id, requests)
        responses: list[weakref.ref[httpx.Response]] = []
        send = client._send

        def noting_send(call: Any, **extra: Any) -> httpx.Response:
            response = send(call, **extra)
            responses.append(weakref.ref(response))
            return response

        client._send = noting_send  # type: ignore[method-assign]
        pages = sum(1 for _ in client.iter_result_page_bodies(batch.batch_id, page_size=5))
        raw_pages = sum(1 for _ in client.iter_raw_result_pages(batch.batch_id, page_size=5))

    assert pages == raw_pages == 6
    assert len(responses) == 12
    assert [ref() for ref in responses] == [None] * 12


def test_clients_share_one_tls_context() -> None:
    # Loading the CA bundle costs tens of milliseconds; a triggerer builds a client per few waits.
    first = XAIBatchClient("key")._http_options()["verify"]
    second = AsyncXAIBatchClient("key")._http_options()["verify"]
    assert first is second is shared_ssl_context()
    assert first.verify_mode.name == "CERT_REQUIRED" and first.check_hostname


def test_the_tls_context_follows_ssl_cert_file(monkeypatch: pytest.MonkeyPatch) -> None:
    import certifi

    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    from_variable = shared_ssl_context()
    monkeypatch.delenv("SSL_CERT_FILE")
    assert from_variable is not shared_ssl_context()


def test_adds_start_with_a_small_call_and_double_up_to_the_limit() -> None:
    text = "x" * 900
    requests = (
        {"custom_id": f"r{i}", "body": {"model": "grok-4.3", "messages": [{"role": "user", "content": text}]}}
        for i in range(60_000)
    )
    client = XAIBatchClient("key")
    counted = 0
    sizes = []
    for call, count in client._add_calls("batch_1", requests, "requests"):
        assert isinstance(call.content, BodyChunks)
        sizes.append(call.content.size)
        counted += count
        call.discard_body()
    assert counted == 60_000
    limit = client.limits.max_add_call_bytes
    assert all(size <= min(FIRST_ADD_CALL_BYTES * 2**n, limit) for n, size in enumerate(sizes))
    assert sizes[:5] == sorted(sizes[:5])
    # Past the ramp, calls are as large as the service allows: a handful more calls, not many.
    assert max(sizes) > 0.9 * limit
    assert len(sizes) <= 9
