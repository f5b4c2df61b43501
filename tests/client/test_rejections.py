"""A rejected add call is split until the one request the service refuses is found and named."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from support.constants import TEST_API_KEY
from test_plans import core, run

from airflow_provider_xai_batch.client import (
    LocatedRequest,
    RetryPolicy,
    XAIBatchClient,
    XAIConflictError,
    XAIInvalidRequestError,
    XAIPermissionDeniedError,
    plans,
)
from airflow_provider_xai_batch.client.protocol import ApiCall
from airflow_provider_xai_batch.emulator import EmulatorServer

UNSUPPORTED = "Model grok-2-mini is not supported for batch processing."


def chat(i: int, model: str = "grok-4.3") -> dict[str, Any]:
    return {
        "custom_id": f"q-{i:05d}",
        "body": {"model": model, "messages": [{"role": "user", "content": f"q{i}"}]},
    }


class Service:
    """Answers add calls as the service does: a call with any unsupported model admits nothing."""

    def __init__(self) -> None:
        self.stored: list[str] = []
        self.calls: list[int] = []

    def __call__(self, call: ApiCall) -> Any:
        assert call.content is not None and not isinstance(call.content, bytes)
        requests = json.loads(b"".join(call.content))["batch_requests"]
        self.calls.append(len(requests))
        if any(r["batch_request"]["chat_get_completion"]["model"] == "grok-2-mini" for r in requests):
            return XAIInvalidRequestError(400, None, UNSUPPORTED)
        self.stored += [r["batch_request_id"] for r in requests]
        return httpx.Response(200, json={})


def test_the_rejected_request_is_named_by_id_and_list_index() -> None:
    service = Service()
    requests = [chat(i, "grok-2-mini" if i == 700 else "grok-4.3") for i in range(1000)]
    with pytest.raises(XAIInvalidRequestError) as info:
        run(plans.add_requests(core(), "batch_1", requests, "requests"), service)
    error = info.value
    assert (error.request_id, error.source, error.position, error.message) == (
        "q-00700",
        "requests",
        "item 700",
        UNSUPPORTED,
    )
    assert str(error) == f"xAI API error 400: requests, item 700, request 'q-00700': {UNSUPPORTED}"
    # Everything before the bad request is added, nothing after it; a few calls per halving.
    assert service.stored == [f"q-{i:05d}" for i in range(700)]
    assert service.calls[0] == 1000 and service.calls[-1] == 1 and len(service.calls) <= 2 * 11


def test_located_requests_are_named_by_their_file_and_line() -> None:
    requests = [
        LocatedRequest(chat(i, "grok-2-mini" if i == 3 else "grok-4.3"), "s3://b/in.jsonl", f"line {i + 1}")
        for i in range(5)
    ]
    with pytest.raises(XAIInvalidRequestError) as info:
        run(plans.add_requests(core(), "batch_1", requests, "ignored"), Service())
    assert str(info.value) == f"xAI API error 400: s3://b/in.jsonl, line 4, request 'q-00003': {UNSUPPORTED}"


def test_a_single_rejected_request_is_named_without_splitting() -> None:
    service = Service()
    with pytest.raises(XAIInvalidRequestError, match=r"requests, item 0, request 'q-00000'"):
        run(plans.add_requests(core(), "batch_1", [chat(0, "grok-2-mini")], "requests"), service)
    assert service.calls == [1]


def test_a_refusal_of_the_whole_batch_is_not_split() -> None:
    calls: list[ApiCall] = []

    def cancelled(call: ApiCall) -> Any:
        calls.append(call)
        return XAIPermissionDeniedError(403, None, "the batch is cancelled")

    with pytest.raises(XAIPermissionDeniedError) as info:
        run(plans.add_requests(core(), "batch_1", [chat(i) for i in range(10)], "requests"), cancelled)
    assert len(calls) == 1 and info.value.request_id is None


def test_the_emulator_rejection_names_the_request(emulator: EmulatorServer) -> None:
    requests = [chat(i, "grok-2-mini" if i == 700 else "grok-4.3") for i in range(1000)]
    with XAIBatchClient(
        TEST_API_KEY, base_url=emulator.url, retry_policy=RetryPolicy(initial_delay=0.01)
    ) as client:
        batch = client.create_batch("rejected")
        with pytest.raises(XAIInvalidRequestError) as info:
            client.add_requests(batch.batch_id, requests, source="nightly prompts")
        assert client.get_batch(batch.batch_id).state.num_requests == 700
        client.add_requests(batch.batch_id, [chat(1)])
        with pytest.raises(XAIConflictError) as conflict:
            client.add_requests(
                batch.batch_id, [chat(0), chat(2), {**chat(1), "body": {**chat(1)["body"], "temperature": 1}}]
            )
    assert str(info.value) == (
        f"xAI API error 400 ({emulator.url}): nightly prompts, item 700, request 'q-00700': {UNSUPPORTED}"
    )
    assert (conflict.value.request_id, conflict.value.position) == ("q-00001", "item 2")
