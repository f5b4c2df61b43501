"""A service that cannot be reached fails fast, says why, and names where the client was going."""

from __future__ import annotations

import asyncio
import pickle
import socket
import ssl

import httpx
import pytest
from support.constants import TEST_API_KEY

from airflow_provider_xai_batch.client import (
    AsyncXAIBatchClient,
    RetryPolicy,
    XAIBatchClient,
    XAIConnectionError,
    XAINotFoundError,
)
from airflow_provider_xai_batch.client.transport_errors import TransportFailure, classify
from airflow_provider_xai_batch.emulator import EmulatorServer
from airflow_provider_xai_batch.emulator.process import free_port

QUICK = RetryPolicy(initial_delay=0.01, max_delay=0.05)


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def test_a_refused_connection_is_retried_a_few_times_then_named_with_the_url() -> None:
    url = closed_port_url()
    with XAIBatchClient(TEST_API_KEY, base_url=url, retry_policy=QUICK) as client:
        with pytest.raises(XAIConnectionError) as info:
            client.get_batch("batch_1")
    error = info.value
    assert error.failure == "refused" and error.origin == url
    assert str(error).startswith(f"xAI API at {url}: connection refused")
    assert f"(GET /v1/batches/batch_1, {QUICK.connect_retries + 1} attempts; ConnectError: " in str(error)
    assert TEST_API_KEY not in str(error)


def test_the_async_client_says_the_same() -> None:
    url = closed_port_url()

    async def scenario() -> XAIConnectionError:
        async with AsyncXAIBatchClient(
            TEST_API_KEY, base_url=url, retry_policy=QUICK, max_retries=1
        ) as client:
            with pytest.raises(XAIConnectionError) as info:
                await client.create_batch("x")
            return info.value

    error = asyncio.run(scenario())
    assert error.failure == "refused"
    assert str(error).startswith(f"xAI API at {url}: connection refused (POST /v1/batches, 2 attempts;")


def test_a_tls_handshake_failure_is_not_retried(emulator: EmulatorServer) -> None:
    url = emulator.url.replace("http://", "https://")
    with XAIBatchClient(TEST_API_KEY, base_url=url, retry_policy=QUICK) as client:
        with pytest.raises(XAIConnectionError) as info:
            client.get_batch("batch_1")
    assert info.value.failure == "tls"
    assert str(info.value).startswith(
        f"xAI API at {url}: TLS handshake failed (GET /v1/batches/batch_1, 1 attempt;"
    )
    assert emulator.faults.calls("get_batch") == 0


def test_an_unknown_host_is_a_dns_failure() -> None:
    url = "http://no-such-host.invalid"
    with XAIBatchClient(TEST_API_KEY, base_url=url, retry_policy=QUICK, max_retries=0) as client:
        with pytest.raises(XAIConnectionError) as info:
            client.get_batch("batch_1")
    assert info.value.failure == "dns"
    assert str(info.value).startswith(
        f"xAI API at {url}: host name not found (GET /v1/batches/batch_1, 1 attempt;"
    )


def test_api_errors_name_the_base_url(emulator: EmulatorServer) -> None:
    with XAIBatchClient(TEST_API_KEY, base_url=emulator.url, conn_id="xai_emu") as client:
        with pytest.raises(XAINotFoundError) as info:
            client.get_batch("batch_missing")
    assert str(info.value).startswith(f"xAI API error 404 ({emulator.url}, connection 'xai_emu'): ")
    again = pickle.loads(pickle.dumps(info.value))
    assert (str(again), again.origin) == (str(info.value), info.value.origin)


def test_connection_errors_survive_pickling() -> None:
    error = XAIConnectionError("xAI API at http://h: host name not found", failure="dns", origin="http://h")
    again = pickle.loads(pickle.dumps(error))
    assert (str(again), again.failure, again.origin) == (str(error), "dns", "http://h")


def chained(outer: Exception, inner: BaseException) -> Exception:
    outer.__cause__ = inner
    return outer


@pytest.mark.parametrize(
    ("error", "failure"),
    [
        (chained(httpx.ConnectError("x"), ConnectionRefusedError(111, "Connection refused")), "refused"),
        (httpx.ConnectError("[Errno 61] Connection refused"), "refused"),
        (httpx.ConnectError("boom"), "unreachable"),
        (chained(httpx.ConnectError("x"), socket.gaierror(-2, "Name or service not known")), "dns"),
        (httpx.ConnectError("[Errno -3] Temporary failure in name resolution"), "dns"),
        (chained(httpx.ConnectError("x"), ssl.SSLCertVerificationError("certificate verify failed")), "tls"),
        (httpx.ConnectTimeout("timed out"), "connect_timeout"),
        (httpx.ReadTimeout("timed out"), "lost"),
        (httpx.RemoteProtocolError("Server disconnected"), "lost"),
    ],
)
def test_transport_errors_are_classified(error: Exception, failure: str) -> None:
    assert classify(error) is TransportFailure(failure)
    assert classify(error).reached is (failure == "lost")


def test_reconnecting_stops_at_the_count_or_the_time_budget() -> None:
    policy = RetryPolicy(
        initial_delay=1.0, jitter=lambda delay: delay, connect_retries=5, connect_retry_seconds=6.0
    )
    waits: list[float] = []
    elapsed = 0.0
    while (delay := policy.reconnect_delay(len(waits), elapsed=elapsed)) is not None:
        waits.append(delay)
        elapsed += delay
    assert waits == [1.0, 2.0] and sum(waits) <= policy.connect_retry_seconds
    assert RetryPolicy(max_retries=0).reconnect_delay(0, elapsed=0.0) is None
