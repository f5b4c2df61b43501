"""The emulated Batch API as a pure state machine: no HTTP, no asyncio, one lock.

Every public method is one call of the wire contract; it returns the JSON-ready answer or raises
``ServiceError``. Time comes only from the injected clock, so tests can drive processing, rate
windows and expiry deterministically. What the service keeps is in ``records``; request checks in
``inline_requests`` and ``file_batches``; outcomes in ``outcomes``; pages in ``listing``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from airflow_provider_xai_batch.emulator.clock import Clock, SystemClock
from airflow_provider_xai_batch.emulator.config import EmulatorConfig
from airflow_provider_xai_batch.emulator.errors import (
    ServiceError,
    failed_precondition,
    invalid_argument,
    not_found,
    permission_denied,
)
from airflow_provider_xai_batch.emulator.file_batches import count_file_requests, ingest_file
from airflow_provider_xai_batch.emulator.inline_requests import new_requests, prepare_call
from airflow_provider_xai_batch.emulator.listing import newest_first, request_page, result_page
from airflow_provider_xai_batch.emulator.media import CONTENT_TYPES, media_bytes
from airflow_provider_xai_batch.emulator.outcomes import CANCELLED_ERROR, PROCESSING_ERROR, OutcomeDecider
from airflow_provider_xai_batch.emulator.pagination import decode_token, page_size
from airflow_provider_xai_batch.emulator.payloads import RESULT_KEYS, quote_json
from airflow_provider_xai_batch.emulator.rate_limits import RATE_LIMITED_ROUTES, RateWindows
from airflow_provider_xai_batch.emulator.records import BatchRecord, FileRecord, batch_json, file_json
from airflow_provider_xai_batch.emulator.store import SUCCEEDED

__all__ = [
    "CANCELLED_ERROR",
    "MAX_FILE_TTL",
    "MIN_FILE_TTL",
    "PROCESSING_ERROR",
    "RATE_LIMITED_ROUTES",
    "BatchService",
    "ServiceError",
]

MIN_FILE_TTL = 3600
MAX_FILE_TTL = 2_592_000
_DAY = 86_400.0


class _PageAsk(NamedTuple):
    """A list call's decoded token, page size, list scope and the time it was made."""

    after: str | None
    size: int
    scope: str
    now: float


class BatchService:
    """Batches, their requests and results, and uploaded files, kept in memory.

    >>> from .clock import ManualClock
    >>> service = BatchService(EmulatorConfig(processing_rate=1.0), ManualClock(1_788_000_000))
    >>> batch_id = service.create_batch("nightly")["batch_id"]
    >>> chat = {"model": "grok-4.3", "messages": [{"role": "user", "content": "Hello"}]}
    >>> row = {"batch_request_id": "r1", "batch_request": {"chat_get_completion": chat}}
    >>> service.add_requests(batch_id, [row])
    {}
    >>> service.get_batch(batch_id)["state"]["num_pending"]
    1
    >>> service.clock.advance(1.0)
    >>> [row] = service.list_results(batch_id)["results"]
    >>> row["batch_result"]["response"]["chat_get_completion"]["choices"][0]["message"]["content"]
    'Emulated answer to: Hello'
    """

    def __init__(self, config: EmulatorConfig | None = None, clock: Clock | None = None) -> None:
        self.config = config if config is not None else EmulatorConfig()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._lock = threading.Lock()
        self._batches: dict[str, BatchRecord] = {}
        self._batch_order: list[str] = []
        self._files: dict[str, FileRecord] = {}
        self._file_order: list[str] = []
        self._rate_windows = RateWindows()
        self._outcomes = OutcomeDecider()

    def reset(self) -> None:
        """Forget every batch, file and rate window."""
        with self._lock:
            self._batches.clear()
            self._batch_order.clear()
            self._files.clear()
            self._file_order.clear()
            self._rate_windows.clear()
            self._outcomes.reset()

    def check_rate(self, route: str) -> None:
        """Count one call of ``route`` against its rolling window; 429 when the window is full."""
        with self._lock:
            self._rate_windows.consume(self.config, route, self.clock.now())

    # -- batches ---------------------------------------------------------------------------------

    def create_batch(self, name: Any, input_file_id: Any = None) -> dict[str, Any]:
        """Create an inline batch, or a sealed file batch when ``input_file_id`` is given."""
        with self._lock:
            now = self.clock.now()
            self._rate_windows.consume(self.config, "create_batch", now)
            if not isinstance(name, str) or not name:
                raise invalid_argument("name is required")
            batch = BatchRecord(
                batch_id=f"batch_{uuid.uuid4()}",
                name=name,
                created_at=now,
                expire_at=now + self.config.batch_ttl_days * _DAY,
                api_key_id=self._api_key_id(),
            )
            if input_file_id is not None:
                if not isinstance(input_file_id, str):
                    raise invalid_argument("input_file_id must be a string")
                source = self._file(input_file_id, now)
                count = count_file_requests(source.content)
                if count > self.config.max_file_requests:
                    raise invalid_argument(
                        f"File {input_file_id} holds {count} requests; "
                        f"a batch file may hold at most {self.config.max_file_requests}"
                    )
                batch.input_file_id = input_file_id
                batch.pending_file = source.content
                batch.ingest_at = now + self.config.file_ingest_seconds
            self._batches[batch.batch_id] = batch
            self._batch_order.append(batch.batch_id)
            self._advance(batch, now)
            return self._batch_json(batch)

    def get_batch(self, batch_id: str) -> dict[str, Any]:
        with self._lock:
            batch = self._batch(batch_id)
            self._advance(batch, self.clock.now())
            return self._batch_json(batch)

    def list_batches(self, limit: int | None = None, token: str | None = None) -> dict[str, Any]:
        """The team's batches, newest first: ``{"batches": [...], "pagination_token": ...}``."""
        with self._listing("batches", limit, token) as ask:
            ids, next_token = newest_first(self._batch_order, ask.after, ask.size, ask.scope)
            page: list[dict[str, Any]] = []
            for batch_id in ids:
                batch = self._batches[batch_id]
                self._advance(batch, ask.now)
                page.append(self._batch_json(batch))
            return {"batches": page, "pagination_token": next_token}

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        """Cancel: unfinished requests become cancelled. Cancelling again changes nothing."""
        with self._lock:
            now = self.clock.now()
            batch = self._batch(batch_id)
            self._advance(batch, now)
            if batch.cancel_time is None:
                batch.cancel_time = now
                batch.requests.cancel(now)
                batch.pending_file = None
            return self._batch_json(batch)

    def add_requests(self, batch_id: str, batch_requests: Any) -> dict[str, Any]:
        """Add inline requests atomically; answers ``{}``.

        Re-adding an id with identical content is accepted and adds nothing; the same id with other
        content answers 412 and admits nothing from the call.
        """
        # Validation is pure and can be slow for a 25 MB call, so it runs before taking the lock;
        # its verdict is only delivered after the checks the service makes first.
        prepared, content_error = prepare_call(batch_requests, self.config)
        with self._lock:
            now = self.clock.now()
            self._rate_windows.consume(self.config, "add_requests", now)
            batch = self._batch(batch_id)
            self._advance(batch, now)
            if batch.cancel_time is not None:
                raise permission_denied(f"Cannot add requests to batch {batch_id}: the batch is cancelled")
            if batch.input_file_id is not None:
                raise failed_precondition("Cannot add inline requests to a file-based batch")
            if content_error is not None:
                raise content_error
            admitted = new_requests(batch.requests, prepared)
            outcomes = [self._outcomes.decide(self.config, batch_id, request) for request in admitted]
            batch.requests.extend(admitted, added_at=now, outcomes=outcomes)
            return {}

    def list_batch_requests(
        self, batch_id: str, limit: int | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """Per-request metadata in submission order."""
        with self._batch_listing("requests", batch_id, limit, token) as (batch, ask):
            rows, next_token = request_page(batch.requests, ask.after, ask.size, ask.scope)
            return {"batch_request_metadata": rows, "pagination_token": next_token}

    def list_results(
        self, batch_id: str, limit: int | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """Results of finished requests, sorted by ``batch_request_id``."""
        rows, next_token = self._result_page(batch_id, limit, token)
        return {"results": [json.loads(row) for row in rows], "pagination_token": next_token}

    def list_results_json(self, batch_id: str, limit: int | None = None, token: str | None = None) -> bytes:
        """The same page as ``list_results``, already encoded: the HTTP answer body."""
        rows, next_token = self._result_page(batch_id, limit, token)
        encoded_token = quote_json(next_token) if next_token is not None else "null"
        return f'{{"results":[{",".join(rows)}],"pagination_token":{encoded_token}}}'.encode()

    def _result_page(
        self, batch_id: str, limit: int | None, token: str | None
    ) -> tuple[list[str], str | None]:
        with self._batch_listing("results", batch_id, limit, token) as (batch, ask):
            return result_page(
                batch.batch_id,
                batch.requests,
                ask.after,
                ask.size,
                ask.scope,
                media_base_url=self.config.media_base_url,
            )

    # -- media -----------------------------------------------------------------------------------

    def media_file(self, batch_id: str, batch_request_id: str, index: int, ext: str) -> tuple[str, bytes]:
        """``(content_type, bytes)`` of one image or video a result names, while its URL is alive.

        Like xAI's media hosts, a URL stops working ``media_ttl_seconds`` after the media was made
        (403); media that was never made answers 404.
        """
        with self._lock:
            now = self.clock.now()
            batch = self._batches.get(batch_id)
            if batch is None:
                raise not_found("No such media")
            self._advance(batch, now)
            store = batch.requests
            position = store.position(batch_request_id)
            if position is None or store.state_at(position) != SUCCEEDED:
                raise not_found("No such media")
            result_key = RESULT_KEYS[store.kind_at(position)]
            if ext == "png":
                exists = result_key == "image_generation" and not store.b64_images_at(position)
                exists = exists and index < store.image_count_at(position)
            else:
                exists = result_key == "video_generation" and index == 0
            if not exists:
                raise not_found("No such media")
            finished = store.finish_time(position) or 0.0
            if now >= finished + self.config.media_ttl_seconds:
                raise permission_denied("Request has expired: media URLs are valid for a limited time")
        return CONTENT_TYPES[ext], media_bytes(batch_id, batch_request_id, index, ext)

    # -- files -----------------------------------------------------------------------------------

    def upload_file(self, filename: str, content: bytes, expires_after: int | None = None) -> dict[str, Any]:
        """Store a JSONL input file as is; nothing is parsed until a batch ingests it."""
        if len(content) > self.config.max_file_bytes:
            raise invalid_argument(
                f"File is {len(content)} bytes; the maximum is {self.config.max_file_bytes} bytes"
            )
        if expires_after is not None and not MIN_FILE_TTL <= expires_after <= MAX_FILE_TTL:
            raise invalid_argument(f"expires_after must be between {MIN_FILE_TTL} and {MAX_FILE_TTL} seconds")
        with self._lock:
            created = int(self.clock.now())
            stored = FileRecord(
                file_id=f"file_{uuid.uuid4()}",
                filename=filename,
                content=content,
                created_at=created,
                expires_at=created + expires_after if expires_after is not None else None,
            )
            self._files[stored.file_id] = stored
            self._file_order.append(stored.file_id)
            return file_json(stored)

    def get_file(self, file_id: str) -> dict[str, Any]:
        with self._lock:
            return file_json(self._file(file_id, self.clock.now()))

    def delete_file(self, file_id: str) -> dict[str, Any]:
        with self._lock:
            self._file(file_id, self.clock.now())
            del self._files[file_id]
            self._file_order.remove(file_id)
            return {"id": file_id, "object": "file", "deleted": True}

    def file_content(self, file_id: str) -> bytes:
        with self._lock:
            return self._file(file_id, self.clock.now()).content

    def list_files(self, limit: int | None = None, token: str | None = None) -> dict[str, Any]:
        """Uploaded files, newest first: ``{"data": [...], "pagination_token": ...}``."""
        with self._listing("files", limit, token) as ask:
            live = [file_id for file_id in self._file_order if self._files[file_id].alive(ask.now)]
            ids, next_token = newest_first(live, ask.after, ask.size, ask.scope)
            return {
                "data": [file_json(self._files[file_id]) for file_id in ids],
                "pagination_token": next_token,
            }

    # -- numbers for the control API -------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """How much the service holds: batches, requests across batches, files."""
        with self._lock:
            return {
                "batches": len(self._batches),
                "requests": sum(len(batch.requests) for batch in self._batches.values()),
                "files": len(self._files),
            }

    # -- internals -------------------------------------------------------------------------------

    @contextmanager
    def _listing(self, scope: str, limit: int | None, token: str | None) -> Iterator[_PageAsk]:
        """The preamble of every list call: check its token and page size, then hold the lock."""
        after = decode_token(token, scope)
        size = page_size(limit)
        with self._lock:
            yield _PageAsk(after=after, size=size, scope=scope, now=self.clock.now())

    @contextmanager
    def _batch_listing(
        self, list_name: str, batch_id: str, limit: int | None, token: str | None
    ) -> Iterator[tuple[BatchRecord, _PageAsk]]:
        """``_listing`` for one batch's list: the batch, brought up to date, with the page asked for."""
        with self._listing(f"{list_name}:{batch_id}", limit, token) as ask:
            batch = self._batch(batch_id)
            self._advance(batch, ask.now)
            yield batch, ask

    def _batch(self, batch_id: str) -> BatchRecord:
        batch = self._batches.get(batch_id)
        if batch is None:
            raise not_found(f"Batch {batch_id} not found")
        return batch

    def _file(self, file_id: str, now: float) -> FileRecord:
        stored = self._files.get(file_id)
        if stored is None or not stored.alive(now):
            raise not_found(f"File {file_id} not found")
        return stored

    def _api_key_id(self) -> str:
        # A stable id derived from the key; the key itself is never shown.
        return str(uuid.UUID(bytes=hashlib.sha256(self.config.api_key.encode()).digest()[:16]))

    def _advance(self, batch: BatchRecord, now: float) -> None:
        # Past its expiry a batch stops processing: what is still pending stays pending for good.
        until = min(now, batch.expire_at)
        if batch.pending_file is not None and batch.ingest_at is not None and until >= batch.ingest_at:
            ingest_file(batch, self.config, self._outcomes)
        batch.requests.advance(until=until, rate=self.config.processing_rate)

    def _batch_json(self, batch: BatchRecord) -> dict[str, Any]:
        return batch_json(batch, extra_fields=self.config.extra_fields)
