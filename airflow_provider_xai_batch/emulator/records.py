"""What the service keeps per batch and per uploaded file, and the JSON each answers with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow_provider_xai_batch.emulator.clock import utc_date
from airflow_provider_xai_batch.emulator.store import RequestStore


@dataclass
class BatchRecord:
    """One batch: its identity, timestamps, requests and, for a file batch, its pending input."""

    batch_id: str
    name: str
    created_at: float
    expire_at: float
    api_key_id: str
    requests: RequestStore = field(default_factory=RequestStore)
    input_file_id: str | None = None
    cancel_time: float | None = None
    cancel_by_xai_message: str | None = None
    # A file batch keeps the file's bytes until ingestion, so deleting the file meanwhile is harmless.
    pending_file: bytes | None = None
    ingest_at: float | None = None


@dataclass
class FileRecord:
    """One uploaded input file, kept as uploaded."""

    file_id: str
    filename: str
    content: bytes
    created_at: int
    expires_at: int | None

    def alive(self, now: float) -> bool:
        """Whether the file still exists at ``now`` (an expired file answers 404 everywhere)."""
        return self.expires_at is None or now < self.expires_at


def batch_json(batch: BatchRecord, *, extra_fields: bool) -> dict[str, Any]:
    """The batch object of the wire contract, with its request counts."""
    store = batch.requests
    answer: dict[str, Any] = {
        "batch_id": batch.batch_id,
        "name": batch.name,
        "create_time": utc_date(batch.created_at),
        "expire_time": utc_date(batch.expire_at),
        "create_api_key_id": batch.api_key_id,
        "cancel_time": utc_date(batch.cancel_time) if batch.cancel_time is not None else None,
        "cancel_by_xai_message": batch.cancel_by_xai_message,
        "state": {
            "num_requests": len(store),
            "num_pending": store.num_pending,
            "num_success": store.num_success,
            "num_error": store.num_error,
            "num_cancelled": store.num_cancelled,
        },
    }
    if batch.input_file_id is not None:
        answer["input_file_id"] = batch.input_file_id
    if extra_fields:
        answer["cost_breakdown"] = {"total_cost_in_usd_ticks": store.cost_ticks}
    return answer


def file_json(stored: FileRecord) -> dict[str, Any]:
    """The file object of the wire contract."""
    return {
        "id": stored.file_id,
        "object": "file",
        "bytes": len(stored.content),
        "created_at": stored.created_at,
        "expires_at": stored.expires_at,
        "filename": stored.filename,
        "purpose": "",
    }
