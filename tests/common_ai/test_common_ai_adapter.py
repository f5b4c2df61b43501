"""The ``xai`` adapter on its own, against the emulator over loopback, as common-ai calls it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

pytest.importorskip("airflow.providers.common.ai.batch.base", reason="common-ai is not installed on this leg")

from airflow.providers.common.ai.batch import dispatch, results
from airflow.providers.common.ai.batch.output_schema import build_output_spec
from airflow.providers.common.ai.exceptions import LLMBatchLimitExceededError, LLMBatchModelMismatchError
from pydantic import BaseModel
from support.constants import TEST_API_KEY

from airflow_provider_xai_batch.client import XAIBatchClient, XAIConflictError
from airflow_provider_xai_batch.common_ai import translate
from airflow_provider_xai_batch.common_ai.adapter import XAIBatchAdapter

KEY = "0123456789abcdef"
FINGERPRINT = "ab" * 32
PROMPTS = [{"prompt": f"Summarise review {i}"} for i in range(5)]


@pytest.fixture
def adapter(emulator: Any) -> Iterator[XAIBatchAdapter]:
    built = XAIBatchAdapter(api_key=TEST_API_KEY, base_url=emulator.url)
    yield built
    built.close()


def submit(adapter: XAIBatchAdapter, requests: list[Any], **options: Any) -> str:
    return adapter.submit(
        requests,
        model="grok-4.3",
        idempotency_key=KEY,
        input_fingerprint=FINGERPRINT,
        output_spec=build_output_spec(options.pop("output_type", str)),
        **options,
    ).batch_id


def test_common_ai_finds_the_adapter_by_its_prefix_for_xai_connections() -> None:
    assert dispatch.get_adapter_class("xai", "xai:grok-4.3") is XAIBatchAdapter
    assert dispatch.resolve_adapter_name("pydanticai", "xai:grok-4.3") == "xai"


def test_built_from_a_connection_it_reaches_the_host_and_never_shows_the_key(emulator: Any) -> None:
    from airflow.sdk import Connection

    conn = Connection(conn_id="x", conn_type="xai", password=TEST_API_KEY, host=f"{emulator.url}/v1")
    adapter = dispatch.build_adapter_from_connection("xai", conn)
    try:
        assert adapter.get_batch(submit(adapter, PROMPTS[:1])).status == "completed"  # type: ignore[arg-type]
        assert TEST_API_KEY not in repr(adapter)
    finally:
        adapter.close()


def test_one_batch_holds_every_prompt_and_results_come_back_by_index(
    adapter: XAIBatchAdapter, emulator: Any
) -> None:
    requests = [*PROMPTS, {"prompt": "this one [[fail]]s"}]
    batch_id = submit(adapter, requests, system_prompt="Be brief", max_tokens=50)
    state = adapter.get_batch(batch_id)
    assert (state.status, dict(state.counts or {})) == (
        "completed",
        {"succeeded": 5, "errored": 1, "expired": 0, "cancelled": 0},
    )
    (batch,) = emulator.service.list_batches(limit=10)["batches"]
    assert batch["name"] == translate.batch_name(KEY, FINGERPRINT, 6)
    items = {item.index: item for item in adapter.iter_results(batch_id)}
    assert sorted(items) == list(range(6))
    assert items[5].provider_status == "errored" and items[5].error is not None
    assert all(items[i].provider_status == "success" and items[i].raw for i in range(5))
    assert items[0].usage is not None and items[0].usage["cost_in_usd_ticks"] > 0


def test_submitting_the_same_input_again_adds_nothing_and_creates_nothing(
    adapter: XAIBatchAdapter, emulator: Any
) -> None:
    first = submit(adapter, PROMPTS)
    assert submit(adapter, PROMPTS) == first
    assert emulator.calls("create_batch") == 1
    assert emulator.service.get_batch(first)["state"]["num_requests"] == 5


def test_orphan_lookup_finds_a_filled_batch_and_skips_partial_stale_or_cancelled_ones(
    adapter: XAIBatchAdapter, emulator: Any
) -> None:
    not_before = datetime.now(timezone.utc).isoformat()
    name = translate.batch_name(KEY, FINGERPRINT, len(PROMPTS))
    with XAIBatchClient(TEST_API_KEY, base_url=emulator.url) as client:
        half = client.create_batch(name)
        first_body = translate.chat_body(
            prompt=PROMPTS[0]["prompt"],
            model="grok-4.3",
            system_prompt="",
            max_tokens=1024,
            params={},
            directive={},
        )
        client.add_requests(half.batch_id, [translate.native_request(KEY, 0, first_body)])
    # A try that died while adding: not to be waited on, but submitting again completes that batch.
    assert adapter.find_orphaned_batch(KEY, FINGERPRINT, not_before) is None
    assert submit(adapter, PROMPTS) == half.batch_id
    assert adapter.find_orphaned_batch(KEY, FINGERPRINT, not_before) == half.batch_id
    assert adapter.find_orphaned_batch(KEY, "cd" * 32, not_before) is None
    assert adapter.find_orphaned_batch("fedcba9876543210", FINGERPRINT, not_before) is None
    assert adapter.find_orphaned_batch(KEY, FINGERPRINT, "2999-01-01T00:00:00+00:00") is None
    adapter.cancel_batch(half.batch_id)
    assert adapter.find_orphaned_batch(KEY, FINGERPRINT, not_before) is None


def test_structured_output_is_requested_as_a_json_schema_and_validated_by_common_ai(
    adapter: XAIBatchAdapter, emulator: Any, tmp_path: Any
) -> None:
    from airflow.sdk import ObjectStoragePath

    class Verdict(BaseModel):
        sentiment: str

    spec = build_output_spec(Verdict)
    batch_id = submit(adapter, PROMPTS[:2], output_type=Verdict)
    # The service takes an identical re-add as a no-op and refuses other content under the same
    # id: so the request sent was exactly the chat body plus the JSON-schema response format.
    body = translate.chat_body(
        prompt=PROMPTS[0]["prompt"],
        model="grok-4.3",
        system_prompt="",
        max_tokens=1024,
        params={},
        directive=translate.structured_output_directive("Verdict", spec.json_schema),
    )
    with XAIBatchClient(TEST_API_KEY, base_url=emulator.url) as client:
        assert client.add_requests(batch_id, [translate.native_request(KEY, 0, body)]) == 1
        del body["response_format"]
        with pytest.raises(XAIConflictError):
            client.add_requests(batch_id, [translate.native_request(KEY, 0, body)])
    counts, _ = results.stream_results_to_jsonl(
        adapter=adapter,
        batch_id=batch_id,
        output_spec=spec,
        request_count=2,
        custom_id_prefix=KEY,
        destination=ObjectStoragePath(f"file://{tmp_path}/rows.jsonl"),
    )
    # The emulator answers prose, not JSON: common-ai records each answer as invalid output.
    assert counts["invalid_output"] == 2
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert all(row["raw_output"] and row["error"]["stage"] == "output_validation" for row in rows)


def test_limits_and_foreign_models_fail_before_anything_is_sent(
    adapter: XAIBatchAdapter, emulator: Any
) -> None:
    spec = build_output_spec(str)
    with pytest.raises(LLMBatchLimitExceededError, match="bytes per request"):
        adapter.validate_requests(
            [{"prompt": "x" * 25_000_001}], model="grok-4.3", output_spec=spec, idempotency_key=KEY
        )
    with pytest.raises(LLMBatchModelMismatchError):
        adapter.validate_requests(
            [{"prompt": "x", "model": "openai:gpt-5"}],
            model="grok-4.3",
            output_spec=spec,
            idempotency_key=KEY,
        )
    adapter.validate_requests(
        [{"prompt": "x", "model": "xai:grok-4.20-0309-reasoning"}],
        model="grok-4.3",
        output_spec=spec,
        idempotency_key=KEY,
    )
    assert emulator.calls() == 0


def test_an_unknown_batch_fails_at_the_call_as_common_ai_expects(adapter: XAIBatchAdapter) -> None:
    with pytest.raises(Exception) as raised:
        adapter.iter_results("batch_does_not_exist")
    assert getattr(raised.value, "status_code", None) == 404
