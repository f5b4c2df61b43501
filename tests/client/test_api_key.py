"""The API key never shows: surrounding whitespace is removed, an unsendable key is refused without
showing it, and every error path at DEBUG logging (httpx and httpcore included) stays clean."""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import traceback
import uuid
from typing import Any

import pytest

from airflow_provider_xai_batch.client import (
    AsyncXAIBatchClient,
    RetryPolicy,
    XAIAuthenticationError,
    XAIBatchClient,
    XAIError,
)
from airflow_provider_xai_batch.client.errors import scrub, secret_forms
from airflow_provider_xai_batch.emulator import EmulatorServer
from airflow_provider_xai_batch.emulator.process import free_port
from airflow_provider_xai_batch.hooks.xai import XAIBatchHook

QUICK = RetryPolicy(initial_delay=0.01, max_delay=0.02)


def canary() -> str:
    return f"xai-canary-{uuid.uuid4().hex}"


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "airflow_provider_xai_batch"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def texts_of(error: BaseException) -> list[str]:
    return [
        str(error),
        repr(error),
        "".join(traceback.format_exception(type(error), error, error.__traceback__)),
        repr(error.__dict__),
        repr(error.__reduce__()),
        repr(error.args),
        repr(pickle.loads(pickle.dumps(error)).__dict__),
    ]


def assert_clean(key: str, *texts: str) -> None:
    # The canary's random part is in every form of the key (raw, escaped, repr, bytes, JSON).
    marker = key.strip()[len("xai-canary-") :][:32]
    for text in texts:
        assert marker not in text, text


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def chat(i: int, model: str = "grok-4.3") -> dict[str, Any]:
    return {"custom_id": f"k-{i}", "body": {"model": model, "messages": [{"role": "user", "content": "q"}]}}


def test_a_key_with_surrounding_whitespace_works_and_no_error_path_shows_it(
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    key = canary()
    stored = f"  {key}\r\n"
    errors: list[BaseException] = []
    with EmulatorServer(api_key=key) as emulator:
        with XAIBatchClient(stored, base_url=emulator.url, retry_policy=QUICK) as client:
            batch = client.create_batch("whitespace")
            assert client.add_requests(batch.batch_id, [chat(i) for i in range(4)]) == 4
            assert len(list(client.iter_results(batch.batch_id))) == 4
            emulator.faults.inject("get_batch", status=503, count=1)
            emulator.faults.inject("get_batch", drop="before", count=1)
            assert client.get_batch(batch.batch_id).batch_id == batch.batch_id
            for failing in (
                lambda: client.get_batch("batch_missing"),
                lambda: client.add_requests(batch.batch_id, [chat(5), chat(6, "grok-2-mini")]),
                lambda: client.add_requests(
                    batch.batch_id, [{**chat(0), "body": {**chat(0)["body"], "n": 2}}]
                ),
            ):
                with pytest.raises(XAIError) as info:
                    failing()
                errors.append(info.value)
        with XAIBatchClient(stored, base_url=emulator.url.replace("http:", "https:"), max_retries=0) as tls:
            with pytest.raises(XAIError) as info:
                tls.get_batch("b")
            errors.append(info.value)
        with EmulatorServer(api_key=canary()) as other:
            with (
                XAIBatchClient(stored, base_url=other.url) as refused,
                pytest.raises(XAIAuthenticationError) as info,
            ):
                refused.get_batch("b")
            errors.append(info.value)
    with XAIBatchClient(stored, base_url=closed_port_url(), retry_policy=QUICK) as closed:
        with pytest.raises(XAIError) as info:
            closed.get_batch("b")
        errors.append(info.value)

    assert [type(e).__name__ for e in errors] == [
        "XAINotFoundError",
        "XAIInvalidRequestError",
        "XAIConflictError",
        "XAIConnectionError",
        "XAIAuthenticationError",
        "XAIConnectionError",
    ]
    assert "send_request_headers" in debug_logs.text  # httpcore's debug log was recorded
    assert_clean(key, debug_logs.text, *(text for error in errors for text in texts_of(error)))


UNSENDABLE = [
    pytest.param("\u00e9", "a non-ASCII character", id="non-ascii"),
    pytest.param("\x01", "a control character", id="control"),
    pytest.param("\n-more", "a control character", id="inner-newline"),
    pytest.param(" half", "a space inside", id="inner-space"),
    pytest.param("\u2028\x7f", "a non-ASCII character and a control character", id="both"),
]


@pytest.mark.parametrize(("tail", "what"), UNSENDABLE)
def test_a_key_that_cannot_go_into_a_header_is_refused_without_showing_it(
    tail: str, what: str, debug_logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = canary() + tail + "\n"
    errors: list[BaseException] = []
    for build in (
        lambda: XAIBatchClient(key, base_url="http://127.0.0.1:9"),
        lambda: AsyncXAIBatchClient(key, base_url="http://127.0.0.1:9"),
    ):
        with pytest.raises(XAIAuthenticationError) as info:
            build()
        errors.append(info.value)
    connection = {"conn_type": "xai", "password": key, "host": "http://127.0.0.1:9"}
    monkeypatch.setenv("AIRFLOW_CONN_XAI_GARBLED", json.dumps(connection))
    hook = XAIBatchHook(xai_conn_id="xai_garbled")
    ok, message = hook.test_connection()
    for build_from_hook in (hook.get_conn, lambda: asyncio.run(hook.get_async_conn())):
        with pytest.raises(XAIAuthenticationError) as info:
            build_from_hook()
        errors.append(info.value)

    assert not ok
    assert message == (
        "xAI API error 401 (http://127.0.0.1:9, connection 'xai_garbled'): the API key cannot be sent: "
        f"it contains {what}; check the key (the connection's password or XAI_API_KEY)"
    )
    assert all(str(error).endswith(message.split(": ", 1)[1]) for error in errors)
    assert_clean(key, message, debug_logs.text, *(text for error in errors for text in texts_of(error)))


@pytest.mark.parametrize("tail", ["", "\u00e9", "\x01", "\n"])
def test_scrubbing_covers_every_way_a_key_is_written(tail: str) -> None:
    key = canary() + tail
    echoed = [
        key,
        repr(key),
        ascii(key),
        repr(f"Bearer {key}".encode("utf-8", "backslashreplace")),
        json.dumps({"error": key}),
        json.dumps({"error": key}, ensure_ascii=False),
        f"Illegal header value {('Bearer ' + key).encode('utf-8', 'backslashreplace')!r}",
    ]
    for text in echoed:
        assert_clean(key, scrub(text, key))
    assert all(form for form in secret_forms(key))
