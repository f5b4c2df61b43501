"""The sync and async clients against the emulator over a real loopback socket."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from support.constants import TEST_API_KEY

from airflow_provider_xai_batch.client import (
    AsyncXAIBatchClient,
    BatchStatus,
    ClientLimits,
    RetryPolicy,
    XAIAuthenticationError,
    XAIBatchClient,
    XAIConflictError,
    XAIInvalidRequestError,
    XAINotFoundError,
    XAIPermissionDeniedError,
    XAIRateLimitError,
    XAIServerError,
)
from airflow_provider_xai_batch.emulator import EmulatorServer, ManualClock

FAST_RETRIES = RetryPolicy(initial_delay=0.01, max_delay=0.05)


def chat(i: int, prompt: str | None = None, **body: Any) -> dict[str, Any]:
    content = prompt if prompt is not None else f"question {i}"
    return {
        "custom_id": f"q-{i:05d}",
        "body": {"model": "grok-4.3", "messages": [{"role": "user", "content": content}], **body},
    }


def client_for(emu: EmulatorServer, **options: Any) -> XAIBatchClient:
    options.setdefault("retry_policy", RetryPolicy(initial_delay=0.01, max_delay=0.05))
    return XAIBatchClient(TEST_API_KEY, base_url=emu.url, **options)


def stored_ids(emu: EmulatorServer, batch_id: str) -> list[str]:
    ids: list[str] = []
    token = None
    while True:
        page = emu.service.list_batch_requests(batch_id, limit=1000, token=token)
        ids += [row["batch_request_id"] for row in page["batch_request_metadata"]]
        token = page.get("pagination_token")
        if not token:
            return ids


@pytest.fixture
def client(emulator: EmulatorServer) -> Iterator[XAIBatchClient]:
    with client_for(emulator) as c:
        yield c


def test_round_trip_create_add_results(client: XAIBatchClient, emulator: EmulatorServer) -> None:
    batch = client.create_batch("round-trip")
    assert batch.status is BatchStatus.EMPTY
    added = client.add_requests(batch.batch_id, (chat(i) for i in range(25)))
    assert added == 25
    done = client.get_batch(batch.batch_id)
    assert done.status is BatchStatus.COMPLETED and done.state.num_success == 25
    results = list(client.iter_results(batch.batch_id, page_size=10))
    assert [r.batch_request_id for r in results] == sorted(f"q-{i:05d}" for i in range(25))
    assert all(r.succeeded and r.cost_in_usd_ticks > 0 for r in results)
    metadata = list(client.iter_batch_requests(batch.batch_id, page_size=7))
    assert {m.state for m in metadata} == {"succeeded"} and len(metadata) == 25
    assert batch.batch_id in {b.batch_id for b in client.iter_batches(page_size=1)}


def test_failures_found_while_processing_come_back_as_failed_results(client: XAIBatchClient) -> None:
    batch = client.create_batch("failures")
    client.add_requests(batch.batch_id, [chat(0), chat(1, max_tokens=-5), chat(2, prompt="please [[fail]]")])
    results = {r.batch_request_id: r for r in client.iter_results(batch.batch_id)}
    assert results["q-00000"].succeeded
    assert "max_tokens = -5" in (results["q-00001"].error or "")
    assert not results["q-00002"].succeeded
    assert client.get_batch(batch.batch_id).state.num_error == 2


def test_cancel_keeps_finished_results_and_refuses_more_adds(emulator: EmulatorServer) -> None:
    emulator.config.update({"processing_rate": 5.0})
    with client_for(emulator) as client:
        batch = client.create_batch("to-cancel")
        client.add_requests(batch.batch_id, [chat(i) for i in range(50)])
        cancelled = client.cancel_batch(batch.batch_id)
        assert cancelled.status is BatchStatus.CANCELLED
        assert client.cancel_batch(batch.batch_id).status is BatchStatus.CANCELLED  # twice is harmless
        results = list(client.iter_results(batch.batch_id))
        assert sum(r.is_cancelled for r in results) >= 40
        with pytest.raises(XAIPermissionDeniedError):
            client.add_requests(batch.batch_id, [chat(99)])


def test_api_errors_raise_the_right_class_with_xais_message(client: XAIBatchClient) -> None:
    with pytest.raises(XAINotFoundError):
        client.get_batch("batch_does_not_exist")
    batch = client.create_batch("errors")
    with pytest.raises(XAIInvalidRequestError, match="not supported for batch processing"):
        client.add_requests(
            batch.batch_id, [{"custom_id": "x", "body": {"model": "grok-2", "messages": [1]}}]
        )
    client.add_requests(batch.batch_id, [chat(1)])
    with pytest.raises(XAIConflictError, match="content differs"):
        client.add_requests(batch.batch_id, [chat(1, prompt="something else")])


def test_a_wrong_key_is_an_authentication_error_without_the_key(emulator: EmulatorServer) -> None:
    with XAIBatchClient("xai-wrong-key-canary", base_url=emulator.url) as client:
        with pytest.raises(XAIAuthenticationError) as info:
            client.get_batch("batch_1")
    assert "xai-wrong-key-canary" not in str(info.value) and "xai-wrong-key-canary" not in repr(info.value)
    assert "xai-wrong-key-canary" not in repr(client)


def test_5xx_is_retried(client: XAIBatchClient, emulator: EmulatorServer) -> None:
    batch = client.create_batch("retry-5xx")
    emulator.faults.inject("get_batch", status=503, count=2)
    assert client.get_batch(batch.batch_id).batch_id == batch.batch_id
    assert emulator.answers(503, "get_batch") == 2


def test_4xx_is_not_retried(client: XAIBatchClient, emulator: EmulatorServer) -> None:
    emulator.faults.inject("get_batch", status=400, count=5)
    with pytest.raises(XAIInvalidRequestError):
        client.get_batch("batch_x")
    assert emulator.calls("get_batch") == 1


def test_a_lost_add_answer_is_resent_without_duplicates(
    client: XAIBatchClient, emulator: EmulatorServer
) -> None:
    batch = client.create_batch("lost-answer")
    emulator.faults.inject("add_requests", drop="after", count=1)
    emulator.faults.inject("add_requests", drop="before", count=1)
    client.limits = ClientLimits(max_requests_per_call=10)
    assert client.add_requests(batch.batch_id, [chat(i) for i in range(30)]) == 30
    ids = stored_ids(emulator, batch.batch_id)
    assert sorted(ids) == sorted(f"q-{i:05d}" for i in range(30))
    assert emulator.calls("add_requests") == 5  # 3 calls + 1 resent after a lost answer + 1 never applied


def test_a_lost_create_answer_finds_the_batch_instead_of_creating_another(
    client: XAIBatchClient, emulator: EmulatorServer
) -> None:
    emulator.faults.inject("create_batch", drop="after", count=1)
    batch = client.create_batch("unique-name-123")
    named = [b for b in client.iter_batches() if b.name == "unique-name-123"]
    assert [b.batch_id for b in named] == [batch.batch_id]


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_a_create_applied_after_the_client_gave_up_waiting_is_found_not_made_twice(
    emulator: EmulatorServer, asynchronous: bool
) -> None:
    # The service applies the create 1.5 s after the client stopped waiting (0.3 s), then drops the
    # connection: a single look-up right away would find nothing and a second batch would appear.
    emulator.faults.inject("create_batch", latency_ms=1500, drop="after", count=1)
    options: dict[str, Any] = {"timeout": 0.3, "retry_policy": FAST_RETRIES, "create_lookup_seconds": 10}
    if asynchronous:

        async def create() -> str:
            async with AsyncXAIBatchClient(TEST_API_KEY, base_url=emulator.url, **options) as client:
                return (await client.create_batch("slow-create")).batch_id

        batch_id = asyncio.run(create())
    else:
        with XAIBatchClient(TEST_API_KEY, base_url=emulator.url, **options) as client:
            batch_id = client.create_batch("slow-create").batch_id
    while emulator.faults.dropped("create_batch") == 0:  # the late create has been applied
        time.sleep(0.05)
    named = [
        b["batch_id"]
        for b in emulator.service.list_batches(limit=100)["batches"]
        if b["name"] == "slow-create"
    ]
    assert named == [batch_id]
    assert emulator.calls("create_batch") == 1


def test_pacing_under_a_low_limit_stores_every_request_once() -> None:
    # Unpaced, the 20 calls would go out within a fraction of a second and most would get 429. The
    # client's window is a quarter longer than the service's: on a loaded test machine a call can
    # take longer in transit than the pacer's own small margin, and the service counts arrivals.
    with EmulatorServer(api_key=TEST_API_KEY, add_rate_limit=8, add_rate_window_seconds=1.0) as emu:
        limits = ClientLimits(add_calls=8, add_window_seconds=1.25, max_requests_per_call=2)
        with client_for(emu, limits=limits) as client:
            batch = client.create_batch("paced")
            assert client.add_requests(batch.batch_id, (chat(i) for i in range(40))) == 40
        assert emu.calls("add_requests") == 20
        assert emu.answers(429) == 0
        assert len(stored_ids(emu, batch.batch_id)) == 40


def test_without_client_pacing_429s_are_retried_and_nothing_is_lost() -> None:
    with EmulatorServer(api_key=TEST_API_KEY, add_rate_limit=5, add_rate_window_seconds=0.5) as emu:
        limits = ClientLimits(add_calls=None, max_requests_per_call=1)
        with client_for(
            emu, limits=limits, retry_policy=RetryPolicy(initial_delay=0.05, max_delay=0.3, max_retries=30)
        ) as client:
            batch = client.create_batch("unpaced")
            client.add_requests(batch.batch_id, [chat(i) for i in range(15)])
        assert emu.answers(429, "add_requests") > 0
        assert sorted(stored_ids(emu, batch.batch_id)) == sorted(f"q-{i:05d}" for i in range(15))


def test_429_surfaces_after_the_retry_budget(emulator: EmulatorServer) -> None:
    emulator.faults.inject("get_batch", status=429, count=10)
    with client_for(emulator, retry_policy=RetryPolicy(initial_delay=0.01, max_retries=2)) as client:
        with pytest.raises(XAIRateLimitError):
            client.get_batch("batch_1")
    assert emulator.calls("get_batch") == 3


def test_add_call_bodies_stay_under_the_cap(emulator: EmulatorServer) -> None:
    emulator.config.update({"max_add_call_bytes": 20_000})
    with client_for(emulator, limits=ClientLimits(max_add_call_bytes=20_000)) as client:
        batch = client.create_batch("capped")
        client.add_requests(batch.batch_id, (chat(i, prompt="x" * 900) for i in range(100)))
    assert emulator.calls("add_requests") >= 5
    assert emulator.answers(413) == 0
    assert len(stored_ids(emulator, batch.batch_id)) == 100


def jsonl(rows: list[Any]) -> bytes:
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


def test_file_batch_happy_path(
    client: XAIBatchClient, emulator: EmulatorServer, manual_clock: ManualClock, tmp_path: Any
) -> None:
    emulator.config.update({"file_ingest_seconds": 0.2})
    rows = [
        {"custom_id": f"f-{i}", "method": "POST", "url": "/v1/chat/completions", "body": chat(i)["body"]}
        for i in range(5)
    ]
    path = tmp_path / "in.jsonl"
    path.write_bytes(jsonl(rows))
    uploaded = client.upload_file(path, expires_after=3600)
    assert uploaded.id.startswith("file_") and uploaded.bytes == path.stat().st_size
    batch = client.create_batch("from-file", input_file_id=uploaded.id)
    assert batch.is_file_batch and batch.status is BatchStatus.VALIDATING
    with pytest.raises(XAIConflictError):
        client.add_requests(batch.batch_id, [chat(1)])
    assert client.get_batch(batch.batch_id).status is BatchStatus.VALIDATING  # until ingested
    manual_clock.advance(0.2)
    assert client.get_batch(batch.batch_id).status is BatchStatus.COMPLETED
    assert sorted(r.batch_request_id for r in client.iter_results(batch.batch_id)) == [
        f"f-{i}" for i in range(5)
    ]
    assert [f.id for f in client.iter_files()] == [uploaded.id]
    client.delete_file(uploaded.id)
    with pytest.raises(XAINotFoundError):
        client.get_file(uploaded.id)


def test_file_batch_with_a_bad_line_is_cancelled_by_the_service(
    client: XAIBatchClient, emulator: EmulatorServer
) -> None:
    emulator.config.update({"file_ingest_seconds": 0.0})
    content = (
        jsonl([{"custom_id": "a", "url": "/v1/chat/completions", "body": chat(0)["body"]}]) + b"{not json\n"
    )
    uploaded = client.upload_file(io.BytesIO(content), filename="bad.jsonl")
    batch = client.create_batch("bad-file", input_file_id=uploaded.id)
    # Ingestion takes no time: the next read already sees the file refused.
    failed = client.get_batch(batch.batch_id)
    assert failed.status is BatchStatus.FAILED
    assert "line 2" in (failed.cancel_by_xai_message or "")


def test_async_client_round_trip_and_errors(emulator: EmulatorServer) -> None:
    async def scenario() -> None:
        async with AsyncXAIBatchClient(
            TEST_API_KEY, base_url=emulator.url, retry_policy=FAST_RETRIES
        ) as client:
            batch = await client.create_batch("async")
            assert await client.add_requests(batch.batch_id, (chat(i) for i in range(12))) == 12
            assert (await client.get_batch(batch.batch_id)).status is BatchStatus.COMPLETED
            ids = [r.batch_request_id async for r in client.iter_results(batch.batch_id, page_size=5)]
            assert ids == sorted(ids) and len(ids) == 12
            assert len([m async for m in client.iter_batch_requests(batch.batch_id, page_size=5)]) == 12
            assert batch.batch_id in [b.batch_id async for b in client.iter_batches()]
            emulator.faults.inject("get_batch", status=500, count=1)
            emulator.faults.inject("get_batch", drop="before", count=1)
            assert (await client.get_batch(batch.batch_id)).batch_id == batch.batch_id
            with pytest.raises(XAINotFoundError):
                await client.get_batch("batch_missing")
            await client.add_requests(batch.batch_id, [chat(1)])
            with pytest.raises(XAIConflictError):
                await client.add_requests(batch.batch_id, [chat(1, prompt="changed")])
            emulator.faults.inject("create_batch", drop="after", count=1)
            again = await client.create_batch("async-unique")
            assert [b.batch_id async for b in client.iter_batches() if b.name == "async-unique"] == [
                again.batch_id
            ]
            cancelled = await client.cancel_batch(again.batch_id)
            assert cancelled.status is BatchStatus.CANCELLED
            uploaded = await client.upload_file(
                io.BytesIO(jsonl([{"custom_id": "z", "body": chat(0)["body"]}])), filename="a.jsonl"
            )
            assert (await client.get_file(uploaded.id)).id == uploaded.id
            assert [f.id async for f in client.iter_files()] == [uploaded.id]
            await client.delete_file(uploaded.id)

    asyncio.run(scenario())


def test_both_clients_read_results_page_by_page_and_file_content_with_retries(
    emulator: EmulatorServer,
) -> None:
    content = jsonl([{"custom_id": f"f{i}", "body": chat(i)["body"]} for i in range(3)])
    with client_for(emulator) as client:
        batch = client.create_batch("pages")
        client.add_requests(batch.batch_id, (chat(i) for i in range(7)))
        uploaded = client.upload_file(io.BytesIO(content), filename="in.jsonl")
        pages = [
            [r.batch_request_id for r in page]
            for page in client.iter_result_pages(batch.batch_id, page_size=3)
        ]
        raw = [
            [r["batch_request_id"] for r in page]
            for page in client.iter_raw_result_pages(batch.batch_id, page_size=3)
        ]
        bodies = [json.loads(body) for body in client.iter_result_page_bodies(batch.batch_id, page_size=3)]
        emulator.faults.inject("file_content", status=503, count=1)
        assert b"".join(client.iter_file_content(uploaded.id, chunk_size=16)) == content
    assert [len(page) for page in pages] == [3, 3, 1] and pages == raw
    assert [[r["batch_request_id"] for r in body["results"]] for body in bodies] == pages

    async def scenario() -> None:
        async with AsyncXAIBatchClient(
            TEST_API_KEY, base_url=emulator.url, retry_policy=FAST_RETRIES
        ) as aclient:
            assert [
                [r.batch_request_id for r in page]
                async for page in aclient.iter_result_pages(batch.batch_id, page_size=3)
            ] == pages
            assert [
                [r["batch_request_id"] for r in page]
                async for page in aclient.iter_raw_result_pages(batch.batch_id, page_size=3)
            ] == pages
            assert [
                json.loads(body)
                async for body in aclient.iter_result_page_bodies(batch.batch_id, page_size=3)
            ] == bodies
            emulator.faults.inject("file_content", drop="before", count=1)
            assert (
                b"".join([c async for c in aclient.iter_file_content(uploaded.id, chunk_size=16)]) == content
            )
            with pytest.raises(XAINotFoundError):
                [c async for c in aclient.iter_file_content("file_missing")]

    asyncio.run(scenario())


class _OneWayStream(io.RawIOBase):
    """A file that can be read once, like a pipe: an upload of it cannot be retried."""

    def __init__(self, content: bytes) -> None:
        self._source = io.BytesIO(content)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._source.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def test_an_upload_that_cannot_be_resent_fails_with_the_services_error(
    client: XAIBatchClient, emulator: EmulatorServer
) -> None:
    emulator.faults.inject("upload_file", status=503, count=1)
    content = jsonl([{"custom_id": "z", "body": chat(0)["body"]}])
    with pytest.raises(XAIServerError, match=r"xAI API error 503"):
        client.upload_file(_OneWayStream(content), filename="pipe.jsonl")  # type: ignore[arg-type]
    assert emulator.calls("upload_file") == 1
    assert client.upload_file(io.BytesIO(content), filename="in.jsonl").filename == "in.jsonl"
