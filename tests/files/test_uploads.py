"""The upload file without a network: its lines, its name, and a stream an HTTP client can size and rewind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_xai_batch.client.errors import XAIInputError
from airflow_provider_xai_batch.sources import resolve_input
from airflow_provider_xai_batch.uploads import (
    KIND_URLS,
    UploadStream,
    check_file_limits,
    jsonl_line,
    plan_upload,
)


def chat(text: str) -> dict[str, Any]:
    return {"model": "grok-4.3", "messages": [{"role": "user", "content": text}]}


def rows(count: int) -> list[dict[str, Any]]:
    return [{"custom_id": f"q{index}", "body": chat(f"question {index}")} for index in range(count)]


def test_every_kind_is_written_under_a_url_that_maps_back_to_it() -> None:
    from airflow_provider_xai_batch.client.inputs import URL_TO_KIND

    for kind in KIND_URLS:
        line = json.loads(jsonl_line({"batch_request_id": "a", "batch_request": {kind: {"model": "m"}}}))
        assert URL_TO_KIND[line["url"]] == kind


def test_an_http_client_sends_exactly_the_planned_bytes_with_a_content_length() -> None:
    plan = plan_upload(resolve_input(requests=rows(500)), name_suffix="abc")
    request = httpx.Request(
        "POST",
        "http://x/v1/files",
        files={"file": (plan.filename, UploadStream(plan), "application/jsonl")},  # type: ignore[dict-item]
    )
    body = request.read()
    assert int(request.headers["content-length"]) == len(body)
    assert body.count(b'"custom_id"') == 500 and plan.size < len(body) < plan.size + 1000


def test_rewinding_reads_the_input_again() -> None:
    plan = plan_upload(resolve_input(requests=rows(50)))
    stream = UploadStream(plan)
    first = stream.read(1000)
    stream.seek(0)
    assert stream.read().startswith(first) and stream.tell() == plan.size


def test_identical_repeats_are_uploaded_once_and_the_name_follows_the_content() -> None:
    plan = plan_upload(resolve_input(requests=rows(3) + rows(1)), name_suffix="ti")
    assert plan.requests == 3
    changed = plan_upload(resolve_input(requests=rows(2)), name_suffix="ti")
    assert changed.filename != plan.filename and plan.filename.startswith("requests-ti-")


def test_an_input_that_changed_since_it_was_measured_is_not_sent(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows(5)))
    plan = plan_upload(resolve_input(source=str(path)))
    path.write_text("".join(json.dumps(row) + "\n" for row in rows(6)))
    with pytest.raises(XAIInputError, match="the input changed while it was being uploaded"):
        UploadStream(plan).read()


def test_an_empty_input_is_refused() -> None:
    with pytest.raises(XAIInputError, match="holds no requests"):
        check_file_limits(plan_upload(resolve_input(requests=[])))
