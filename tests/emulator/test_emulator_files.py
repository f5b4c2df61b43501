from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_xai_batch.emulator import BatchService, EmulatorConfig, ManualClock, ServiceError


def line(
    custom_id: str, url: str = "/v1/chat/completions", body: dict[str, Any] | None = None, **extra: Any
) -> str:
    if body is None:
        body = {"model": "grok-4.3", "messages": [{"role": "user", "content": f"question {custom_id}"}]}
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": url, "body": body, **extra})


def jsonl(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def file_batch(service: BatchService, content: bytes) -> str:
    uploaded = service.upload_file("batch.jsonl", content)
    return str(service.create_batch("from-file", uploaded["id"])["batch_id"])


def test_upload_stores_bytes_unparsed(service: BatchService) -> None:
    uploaded = service.upload_file("junk.jsonl", b"not json at all")
    assert uploaded["bytes"] == 15 and uploaded["expires_at"] is None
    assert service.file_content(uploaded["id"]) == b"not json at all"
    assert service.list_files()["data"] == [uploaded]
    assert service.delete_file(uploaded["id"]) == {"id": uploaded["id"], "object": "file", "deleted": True}
    with pytest.raises(ServiceError) as caught:
        service.get_file(uploaded["id"])
    assert caught.value.status == 404


def test_files_expire(service: BatchService, clock: ManualClock) -> None:
    uploaded = service.upload_file("a.jsonl", b"{}", expires_after=3600)
    assert uploaded["expires_at"] == uploaded["created_at"] + 3600
    clock.advance(3600)
    with pytest.raises(ServiceError):
        service.get_file(uploaded["id"])
    for bad in (10, 2_592_001):
        with pytest.raises(ServiceError) as caught:
            service.upload_file("a.jsonl", b"{}", expires_after=bad)
        assert caught.value.status == 400


def test_a_file_batch_reads_zero_while_ingesting_then_fills_in(
    config: EmulatorConfig, clock: ManualClock
) -> None:
    config.file_ingest_seconds = 2.0
    config.processing_rate = 1.0
    service = BatchService(config, clock)
    content = jsonl(
        line("chat-1"),
        line("resp-1", "/v1/responses", {"model": "grok-4.3", "input": "hello"}),
        line("img-1", "/v1/images/generations", {"model": "grok-imagine-image", "prompt": "a fox"}),
        line("vid-1", "/v1/videos", {"model": "grok-imagine-video", "prompt": "rain"}),
    )
    uploaded = service.upload_file("batch.jsonl", content)
    batch = service.create_batch("from-file", uploaded["id"])
    assert batch["input_file_id"] == uploaded["id"]
    assert batch["state"]["num_requests"] == 0
    clock.advance(1.9)
    assert service.get_batch(batch["batch_id"])["state"]["num_requests"] == 0
    clock.advance(0.1)
    assert service.get_batch(batch["batch_id"])["state"]["num_pending"] == 4
    # Deleting the file after creating the batch does not disturb it.
    service.delete_file(uploaded["id"])
    clock.advance(4.0)
    state = service.get_batch(batch["batch_id"])["state"]
    assert (state["num_requests"], state["num_success"]) == (4, 4)
    results = {
        item["batch_request_id"]: item["batch_result"]["response"]
        for item in service.list_results(batch["batch_id"])["results"]
    }
    assert set(results) == {"chat-1", "resp-1", "img-1", "vid-1"}
    assert "chat_get_completion" in results["resp-1"]
    assert "image_generation" in results["img-1"] and "video_generation" in results["vid-1"]
    with pytest.raises(ServiceError) as caught:
        service.add_requests(batch["batch_id"], [])
    assert (caught.value.status, caught.value.message) == (
        412,
        "Cannot add inline requests to a file-based batch",
    )


@pytest.mark.parametrize(
    ("second_line", "message"),
    [
        ('{"custom_id": "x", "url": ', "line 2: invalid JSON: "),
        (line("x", "/v1/completions"), "line 2: unsupported url '/v1/completions'"),
        (json.dumps({"custom_id": "x", "url": "/v1/chat/completions"}), "line 2: missing body"),
        (
            line("x", body={"model": "grok-2", "messages": [{"role": "user", "content": "hi"}]}),
            "line 2: Model grok-2 is not supported for batch processing.",
        ),
        (line("a"), "line 2: duplicate custom_id 'a'"),
        (line("x", method="GET"), "line 2: unsupported method 'GET'"),
    ],
)
def test_an_invalid_line_gets_the_batch_cancelled_by_xai(
    service: BatchService, clock: ManualClock, second_line: str, message: str
) -> None:
    batch_id = file_batch(service, jsonl(line("a"), second_line, line("c")))
    clock.advance(1.0)
    batch = service.get_batch(batch_id)
    assert batch["cancel_by_xai_message"].startswith("JSONL file validation failed: " + message)
    assert batch["cancel_time"] is not None
    assert batch["state"] == {
        "num_requests": 0,
        "num_pending": 0,
        "num_success": 0,
        "num_error": 0,
        "num_cancelled": 0,
    }
    assert service.list_results(batch_id)["results"] == []


def test_blank_lines_are_skipped_and_missing_ids_invented(service: BatchService, clock: ManualClock) -> None:
    no_id = json.dumps(
        {
            "url": "/v1/chat/completions",
            "body": {"model": "grok-4.3", "messages": [{"role": "user", "content": "q"}]},
        }
    )
    batch_id = file_batch(service, f"\n{line('a')}\n\n{no_id}\n".encode())
    clock.advance(1.0)
    assert service.get_batch(batch_id)["state"]["num_success"] == 2


def test_file_limits(config: EmulatorConfig, service: BatchService) -> None:
    config.max_file_requests = 3
    uploaded = service.upload_file("big.jsonl", jsonl(*(line(f"r{n}") for n in range(4))))
    with pytest.raises(ServiceError) as caught:
        service.create_batch("too-many", uploaded["id"])
    assert caught.value.status == 400 and "at most 3" in caught.value.message
    config.max_file_bytes = 100
    with pytest.raises(ServiceError) as caught:
        service.upload_file("big.jsonl", b"x" * 101)
    assert caught.value.status == 400
    with pytest.raises(ServiceError) as caught:
        service.create_batch("missing", "file_nope")
    assert caught.value.status == 404


def test_cancelling_before_ingestion_leaves_an_empty_cancelled_batch(
    service: BatchService, clock: ManualClock
) -> None:
    batch_id = file_batch(service, jsonl(line("a")))
    cancelled = service.cancel_batch(batch_id)
    clock.advance(5)
    assert service.get_batch(batch_id) == cancelled
    assert cancelled["cancel_by_xai_message"] is None and cancelled["state"]["num_requests"] == 0
