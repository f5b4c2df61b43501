"""Request rows in the three accepted shapes, JSONL writers and readers of the emulator's state."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from airflow_provider_xai_batch.client.inputs import generated_request_id

MODEL = "grok-4.3"


def chat(text: str) -> dict[str, Any]:
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


def explicit_id(row: dict[str, Any]) -> str | None:
    return row.get("batch_request_id") or row.get("custom_id")


def write_jsonl(
    path: Path, rows: Iterable[Any], *, compress: bool = False, final_newline: bool = True
) -> Path:
    """Write rows (dicts are JSON-encoded; str/bytes are written as they are) one per line."""
    lines = []
    for row in rows:
        if isinstance(row, bytes):
            lines.append(row)
        elif isinstance(row, str):
            lines.append(row.encode("utf-8"))
        else:
            lines.append(json.dumps(row).encode("utf-8"))
    data = b"\n".join(lines) + (b"\n" if lines and final_newline else b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def expected_file_ids(uri: str, rows: list[dict[str, Any]]) -> list[str]:
    """The ids a file's rows end up with: their own, or the one derived from the file URI and line."""
    return [
        explicit_id(row) or generated_request_id(uri, f"line {number}") for number, row in enumerate(rows, 1)
    ]


def batch_request_ids(emulator: Any, batch_id: str) -> list[str]:
    """Every request id the emulator holds for a batch, in submission order."""
    ids: list[str] = []
    token = None
    while True:
        page = emulator.service.list_batch_requests(batch_id, limit=1000, token=token)
        ids.extend(row["batch_request_id"] for row in page["batch_request_metadata"])
        token = page.get("pagination_token")
        if not token:
            return ids


def all_batches(emulator: Any) -> list[dict[str, Any]]:
    return list(emulator.service.list_batches(limit=1000)["batches"])
