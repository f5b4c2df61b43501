"""Request rows in the three accepted shapes (native, OpenAI-style, short), and their ids."""

from __future__ import annotations

import json
from typing import Any

from airflow_provider_xai_batch.client.inputs import generated_request_id
from support.constants import MODEL


def chat(text: str) -> dict[str, Any]:
    """A chat completion body asking ``text``."""
    return {"model": MODEL, "messages": [{"role": "user", "content": text}]}


def native(text: str, request_id: str | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"batch_request": {"chat_get_completion": chat(text)}}
    if request_id is not None:
        row["batch_request_id"] = request_id
    return row


def openai_style(
    text: str, request_id: str | None = None, url: str = "/v1/chat/completions"
) -> dict[str, Any]:
    body = chat(text) if url == "/v1/chat/completions" else {"model": MODEL, "input": text}
    row: dict[str, Any] = {"method": "POST", "url": url, "body": body}
    if request_id is not None:
        row["custom_id"] = request_id
    return row


def short(text: str, request_id: str | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"body": chat(text)}
    if request_id is not None:
        row["custom_id"] = request_id
    return row


def chat_rows(count: int, prefix: str = "row") -> list[dict[str, Any]]:
    """``count`` native chat requests with deterministic ids (``row-0000``, ...)."""
    return [
        {
            "batch_request_id": f"{prefix}-{index:04d}",
            "batch_request": {"chat_get_completion": chat(f"question {index}")},
        }
        for index in range(count)
    ]


def jsonl_line(custom_id: str, content: str = "hello") -> str:
    """One OpenAI-style JSONL line, as text (so a test can also write a broken one)."""
    return json.dumps({"custom_id": custom_id, **openai_style(content)})


def native_request(request_id: str, text: str) -> dict[str, Any]:
    """A native row with its id first, as a hand-written file would have it."""
    return {"batch_request_id": request_id, **native(text)}


def explicit_id(row: dict[str, Any]) -> str | None:
    return row.get("batch_request_id") or row.get("custom_id")


def expected_file_ids(uri: str, rows: list[dict[str, Any]]) -> list[str]:
    """The ids a file's rows end up with: their own, or the one derived from the file URI and line."""
    return [
        explicit_id(row) or generated_request_id(uri, f"line {number}") for number, row in enumerate(rows, 1)
    ]
