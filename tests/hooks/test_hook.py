"""XAIBatchHook: connection handling and every method, sync and async, against the emulator."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from support.constants import TEST_API_KEY

from airflow_provider_xai_batch.client import (
    AsyncXAIBatchClient,
    BatchStatus,
    XAIBatchClient,
    XAIConnectionError,
    XAIError,
)
from airflow_provider_xai_batch.emulator import EmulatorServer
from airflow_provider_xai_batch.emulator.process import free_port
from airflow_provider_xai_batch.hooks.xai import XAIBatchHook, base_url_of

CHAT = {"model": "grok-4.3", "messages": [{"role": "user", "content": "hello"}]}


def requests(n: int) -> list[dict[str, Any]]:
    return [{"custom_id": f"h-{i}", "body": CHAT | {"temperature": i / 100}} for i in range(n)]


def test_every_sync_method(
    xai_connection: str, emulator: EmulatorServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    hook = XAIBatchHook(xai_conn_id=xai_connection)
    request.addfinalizer(hook.close)
    assert isinstance(hook.get_conn(), XAIBatchClient) and hook.get_conn() is hook.get_conn()
    assert hook.test_connection() == (True, f"Connected to {emulator.url} (connection 'xai_default')")
    batch = hook.create_batch("hook-sync")
    assert hook.add_requests(batch.batch_id, iter(requests(7))) == 7
    assert hook.get_batch(batch.batch_id).status is BatchStatus.COMPLETED
    assert batch.batch_id in {b.batch_id for b in hook.iter_batches(page_size=2)}
    assert len(list(hook.iter_batch_requests(batch.batch_id, page_size=3))) == 7
    assert len(list(hook.iter_results(batch.batch_id, page_size=3))) == 7
    assert hook.find_batch_by_name("hook-sync").batch_id == batch.batch_id  # type: ignore[union-attr]
    assert hook.cancel_batch(batch.batch_id).status is BatchStatus.CANCELLED
    local = tmp_path / "in.jsonl"
    local.write_text(json.dumps({"custom_id": "f", "body": CHAT}) + "\n")
    assert hook.upload_file(str(local)).filename == "in.jsonl"
    assert hook.upload_file(f"file://{local}", filename="renamed.jsonl").filename == "renamed.jsonl"
    with local.open("rb") as handle:
        opened = hook.upload_file(handle, filename="opened.jsonl")
    assert hook.get_file(opened.id).filename == "opened.jsonl"
    assert opened.id in {uploaded.id for uploaded in hook.iter_files(page_size=1)}


def test_the_facade_adds_with_the_connections_limits(
    xai_conn: Any, emulator: EmulatorServer, request: pytest.FixtureRequest
) -> None:
    xai_conn(max_add_call_bytes=2000)
    hook = XAIBatchHook()
    request.addfinalizer(hook.close)
    assert hook.limits.max_add_call_bytes == 2000
    assert hook.limits.largest_request_bytes == 2000 - len(b'{"batch_requests":[]}')
    calls: list[int] = []
    batch = hook.create_batch("hook-calls")
    assert hook.add_requests(batch.batch_id, requests(20), on_call=calls.append) == 20
    assert len(calls) > 1 and len(calls) == emulator.calls("add_requests")


def test_every_async_method(xai_connection: str, emulator: EmulatorServer) -> None:
    async def scenario() -> None:
        client = await XAIBatchHook(xai_conn_id=xai_connection).get_async_conn()
        assert isinstance(client, AsyncXAIBatchClient)
        async with client:
            batch = await client.create_batch("hook-async")
            assert await client.add_requests(batch.batch_id, requests(3)) == 3
            assert (await client.get_batch(batch.batch_id)).state.num_success == 3
            assert len([r async for r in client.iter_results(batch.batch_id)]) == 3
            assert (await client.cancel_batch(batch.batch_id)).status is BatchStatus.CANCELLED

    asyncio.run(scenario())


def test_test_connection_reports_a_wrong_key_without_leaking_it(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_XAI_BAD",
        json.dumps({"conn_type": "xai", "password": "xai-canary-wrong", "host": emulator.url}),
    )
    ok, message = XAIBatchHook(xai_conn_id="xai_bad").test_connection()
    assert not ok and "Incorrect API key" in message and "xai-canary-wrong" not in message
    assert message.startswith(f"xAI API error 400 ({emulator.url}, connection 'xai_bad'): ")


def test_test_connection_to_a_closed_port_answers_after_one_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    connection = {
        "conn_type": "xai",
        "password": "xai-canary-closed",
        "host": url,
        "extra": {"max_retries": 8},
    }
    monkeypatch.setenv("AIRFLOW_CONN_XAI_CLOSED", json.dumps(connection))
    hook = XAIBatchHook(xai_conn_id="xai_closed")
    ok, message = hook.test_connection()
    assert not ok and "xai-canary-closed" not in message
    assert message.startswith(
        f"xAI API at {url}, connection 'xai_closed': connection refused (GET /v1/batches, 1 attempt;"
    )
    # A task retries a few times more, then fails with the same names.
    hook.get_conn().retry_policy.initial_delay = 0.01
    with pytest.raises(
        XAIConnectionError, match=r"connection 'xai_closed': connection refused .* 4 attempts"
    ):
        hook.get_batch("batch_1")


def test_an_empty_password_falls_back_to_the_environment(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_XAI_ENV", json.dumps({"conn_type": "xai", "host": emulator.url}))
    with pytest.raises(XAIError, match="no API key"):
        XAIBatchHook(xai_conn_id="xai_env").get_conn()
    monkeypatch.setenv("XAI_API_KEY", TEST_API_KEY)
    assert XAIBatchHook(xai_conn_id="xai_env").test_connection()[0]


def test_without_any_connection_the_default_uses_environment_variables(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_XAI_DEFAULT", raising=False)
    monkeypatch.setenv("XAI_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("XAI_BASE_URL", emulator.url)
    assert XAIBatchHook().get_conn().base_url == emulator.url
    assert asyncio.run(XAIBatchHook().get_async_conn()).base_url == emulator.url


def test_extra_sets_timeout_retries_and_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = {
        "timeout": 5,
        "connect_timeout": 2,
        "connect_retries": 0,
        "max_retries": 1,
        "add_calls": 10,
        "add_window_seconds": 2,
        "max_add_call_bytes": 1000,
    }
    monkeypatch.setenv(
        "AIRFLOW_CONN_XAI_TUNED",
        json.dumps({"conn_type": "xai", "password": "k", "host": "http://127.0.0.1:1", "extra": extra}),
    )
    client = XAIBatchHook(xai_conn_id="xai_tuned").get_conn()
    assert client.timeout == 5 and client.retry_policy.max_retries == 1
    assert (client.connect_timeout, client.retry_policy.connect_retries) == (2, 0)
    assert client.conn_id == "xai_tuned"
    assert (client.limits.add_calls, client.limits.add_window_seconds, client.limits.max_add_call_bytes) == (
        10,
        2,
        1000,
    )


@pytest.mark.parametrize(
    ("args", "url"),
    [
        (("http://127.0.0.1:8787",), "http://127.0.0.1:8787"),
        (("http://127.0.0.1:8787/",), "http://127.0.0.1:8787"),
        (("127.0.0.1", 8787, "http"), "http://127.0.0.1:8787"),
        (("api.x.ai",), "https://api.x.ai"),
        ((None,), "https://api.x.ai"),
    ],
)
def test_base_url_from_connection_fields(args: tuple[Any, ...], url: str) -> None:
    assert base_url_of(*args) == url


def test_ui_fields_and_provider_info_validate_against_airflows_schema() -> None:
    import importlib.resources

    import jsonschema

    from airflow_provider_xai_batch.get_provider_info import get_provider_info

    schema = json.loads((importlib.resources.files("airflow") / "provider_info.schema.json").read_text())
    info = get_provider_info()
    jsonschema.validate(info, schema)
    assert info["connection-types"][0]["connection-type"] == XAIBatchHook.conn_type == "xai"
    behaviour = XAIBatchHook.get_ui_field_behaviour()
    assert behaviour["relabeling"]["password"] == "API key" and "login" in behaviour["hidden_fields"]


def test_the_provider_is_registered_with_airflow() -> None:
    # Tasks look hooks up through the task SDK's provider registry in newer Airflow (the old one warns);
    # before that, ``ProvidersManager`` was that registry.
    try:
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime as Registry
    except ImportError:
        from airflow.providers_manager import ProvidersManager as Registry  # type: ignore[assignment]

    manager = Registry()
    assert "airflow-provider-xai-batch" in manager.providers
    assert "xai" in manager.hooks
