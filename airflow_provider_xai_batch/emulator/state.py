"""The emulated Batch API as a pure state machine: no HTTP, no asyncio, one lock.

Every public method is one call of the wire contract; it returns the JSON-ready answer or raises
``ServiceError``. Time comes only from the injected clock, so tests can drive processing, rate
windows and expiry deterministically.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_xai_batch.emulator.clock import Clock, SystemClock, utc_date
from airflow_provider_xai_batch.emulator.config import EmulatorConfig
from airflow_provider_xai_batch.emulator.errors import (
    ServiceError,
    failed_precondition,
    invalid_argument,
    not_found,
    permission_denied,
)
from airflow_provider_xai_batch.emulator.errors import resource_exhausted as rate_limited
from airflow_provider_xai_batch.emulator.pagination import decode_token, encode_token, page_size
from airflow_provider_xai_batch.emulator.payloads import (
    ENDPOINTS,
    URL_KINDS,
    InvalidRequest,
    PreparedRequest,
    prepare_request,
    quote_json,
    render_response_json,
)
from airflow_provider_xai_batch.emulator.store import (
    CANCELLED,
    FAILS_BY_RATE,
    SUCCEEDED,
    SUCCEEDS,
    RequestStore,
)
from airflow_provider_xai_batch.emulator.strict_json import InvalidJSON, parse_json

__all__ = ["BatchService", "ServiceError"]

RATE_LIMITED_ROUTES = ("create_batch", "add_requests")
PROCESSING_ERROR = "Internal error while processing the request"
CANCELLED_ERROR = "Batch cancelled"
MIN_FILE_TTL = 3600
MAX_FILE_TTL = 2_592_000
_DAY = 86_400.0


@dataclass
class _Batch:
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
class _File:
    file_id: str
    filename: str
    content: bytes
    created_at: int
    expires_at: int | None


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
        self._batches: dict[str, _Batch] = {}
        self._batch_order: list[str] = []
        self._files: dict[str, _File] = {}
        self._file_order: list[str] = []
        self._rate_windows: dict[str, deque[float]] = {route: deque() for route in RATE_LIMITED_ROUTES}
        # (request id, content digest) of [[fail-transient]] requests that already failed once.
        self._failed_transiently: set[tuple[str, bytes]] = set()

    def reset(self) -> None:
        """Forget every batch, file and rate window."""
        with self._lock:
            self._batches.clear()
            self._batch_order.clear()
            self._files.clear()
            self._file_order.clear()
            for window in self._rate_windows.values():
                window.clear()
            self._failed_transiently.clear()

    # -- rate limits -----------------------------------------------------------------------------

    def check_rate(self, route: str) -> None:
        """Count one call of ``route`` against its rolling window; 429 when the window is full."""
        with self._lock:
            self._consume_rate(route, self.clock.now())

    def _consume_rate(self, route: str, now: float) -> None:
        if route == "create_batch":
            limit, window = self.config.create_rate_limit, self.config.create_rate_window_seconds
        elif route == "add_requests":
            limit, window = self.config.add_rate_limit, self.config.add_rate_window_seconds
        else:
            return
        if limit <= 0:
            return
        calls = self._rate_windows[route]
        while calls and calls[0] <= now - window:
            calls.popleft()
        if len(calls) >= limit:
            # Refused calls do not count, so a client backing off gets through once the window slides.
            raise rate_limited()
        calls.append(now)

    # -- batches ---------------------------------------------------------------------------------

    def create_batch(self, name: Any, input_file_id: Any = None) -> dict[str, Any]:
        """Create an inline batch, or a sealed file batch when ``input_file_id`` is given."""
        with self._lock:
            now = self.clock.now()
            self._consume_rate("create_batch", now)
            if not isinstance(name, str) or not name:
                raise invalid_argument("name is required")
            batch = _Batch(
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
                count = sum(1 for line in source.content.split(b"\n") if line.strip())
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
        after = decode_token(token, "batches")
        size = page_size(limit)
        with self._lock:
            now = self.clock.now()
            end = len(self._batch_order)
            if after is not None:
                try:
                    end = self._batch_order.index(after)
                except ValueError:
                    raise invalid_argument("Invalid pagination_token") from None
            begin = max(0, end - size)
            page: list[dict[str, Any]] = []
            for batch_id in reversed(self._batch_order[begin:end]):
                batch = self._batches[batch_id]
                self._advance(batch, now)
                page.append(self._batch_json(batch))
            next_token = encode_token(page[-1]["batch_id"], "batches") if page and begin > 0 else None
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
        config = self.config
        # Validation is pure and can be slow for a 25 MB call, so it runs before taking the lock;
        # its verdict is only delivered after the checks the service makes first.
        prepared: list[PreparedRequest] = []
        content_error: ServiceError | None = None
        if not isinstance(batch_requests, list):
            content_error = invalid_argument("batch_requests must be a list")
        else:
            supported = frozenset(config.supported_models)
            for index, item in enumerate(batch_requests):
                try:
                    prepared.append(_prepare_item(index, item, supported, config.max_request_bytes))
                except ServiceError as error:
                    content_error = error
                    break
        with self._lock:
            now = self.clock.now()
            self._consume_rate("add_requests", now)
            batch = self._batch(batch_id)
            self._advance(batch, now)
            if batch.cancel_time is not None:
                raise permission_denied(f"Cannot add requests to batch {batch_id}: the batch is cancelled")
            if batch.input_file_id is not None:
                raise failed_precondition("Cannot add inline requests to a file-based batch")
            if content_error is not None:
                raise content_error
            store = batch.requests
            admitted: list[PreparedRequest] = []
            in_call: dict[str, bytes] = {}
            for request in prepared:
                request_id = request.batch_request_id
                position = store.position(request_id)
                earlier = store.digest_at(position) if position is not None else in_call.get(request_id)
                if earlier is None:
                    in_call[request_id] = request.digest
                    admitted.append(request)
                elif earlier != request.digest:
                    raise failed_precondition(
                        f"batch_request_id '{request_id}' content differs from originally submitted"
                    )
            outcomes = [self._outcome(batch_id, request) for request in admitted]
            store.extend(admitted, added_at=now, outcomes=outcomes)
            return {}

    def list_batch_requests(
        self, batch_id: str, limit: int | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """Per-request metadata in submission order."""
        after = decode_token(token, f"requests:{batch_id}")
        size = page_size(limit)
        with self._lock:
            batch = self._batch(batch_id)
            self._advance(batch, self.clock.now())
            store = batch.requests
            try:
                begin = store.after(after)
            except KeyError:
                raise invalid_argument("Invalid pagination_token") from None
            end = min(len(store), begin + size)
            rows = [self._metadata(store, position) for position in range(begin, end)]
            next_token = (
                encode_token(store.id_at(end - 1), f"requests:{batch_id}")
                if rows and end < len(store)
                else None
            )
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
        after = decode_token(token, f"results:{batch_id}")
        size = page_size(limit)
        with self._lock:
            batch = self._batch(batch_id)
            self._advance(batch, self.clock.now())
            store = batch.requests
            finished = store.finished_after(after)
            rows: list[str] = []
            last_id = ""
            for request_id, position in finished:
                rows.append(self._result(batch.batch_id, store, request_id, position))
                last_id = request_id
                if len(rows) == size:
                    break
            next_token = None
            if len(rows) == size and next(finished, None) is not None:
                next_token = encode_token(last_id, f"results:{batch_id}")
            return rows, next_token

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
            stored = _File(
                file_id=f"file_{uuid.uuid4()}",
                filename=filename,
                content=content,
                created_at=created,
                expires_at=created + expires_after if expires_after is not None else None,
            )
            self._files[stored.file_id] = stored
            self._file_order.append(stored.file_id)
            return _file_json(stored)

    def get_file(self, file_id: str) -> dict[str, Any]:
        with self._lock:
            return _file_json(self._file(file_id, self.clock.now()))

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
        after = decode_token(token, "files")
        size = page_size(limit)
        with self._lock:
            now = self.clock.now()
            live = [file_id for file_id in self._file_order if _alive(self._files[file_id], now)]
            end = len(live)
            if after is not None:
                try:
                    end = live.index(after)
                except ValueError:
                    raise invalid_argument("Invalid pagination_token") from None
            begin = max(0, end - size)
            page = [_file_json(self._files[file_id]) for file_id in reversed(live[begin:end])]
            next_token = encode_token(page[-1]["id"], "files") if page and begin > 0 else None
            return {"data": page, "pagination_token": next_token}

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

    def _batch(self, batch_id: str) -> _Batch:
        batch = self._batches.get(batch_id)
        if batch is None:
            raise not_found(f"Batch {batch_id} not found")
        return batch

    def _file(self, file_id: str, now: float) -> _File:
        stored = self._files.get(file_id)
        if stored is None or not _alive(stored, now):
            raise not_found(f"File {file_id} not found")
        return stored

    def _api_key_id(self) -> str:
        # A stable id derived from the key; the key itself is never shown.
        return str(uuid.UUID(bytes=hashlib.sha256(self.config.api_key.encode()).digest()[:16]))

    def _outcome(self, batch_id: str, request: PreparedRequest) -> int:
        request_id = request.batch_request_id
        if request.fails_transiently:
            key = (request_id, request.digest)
            if key not in self._failed_transiently:
                self._failed_transiently.add(key)
                return FAILS_BY_RATE  # answered with PROCESSING_ERROR, an internal error
        rate = self.config.error_rate
        if rate <= 0:
            return SUCCEEDS
        digest = hashlib.blake2b(f"{self.config.seed}\0{batch_id}\0{request_id}".encode(), digest_size=8)
        draw = int.from_bytes(digest.digest(), "big") / 2**64
        return FAILS_BY_RATE if draw < rate else SUCCEEDS

    def _advance(self, batch: _Batch, now: float) -> None:
        # Past its expiry a batch stops processing: what is still pending stays pending for good.
        until = min(now, batch.expire_at)
        if batch.pending_file is not None and batch.ingest_at is not None and until >= batch.ingest_at:
            self._ingest(batch)
        batch.requests.advance(until=until, rate=self.config.processing_rate)

    def _ingest(self, batch: _Batch) -> None:
        content, at = batch.pending_file, batch.ingest_at
        assert content is not None and at is not None
        batch.pending_file = None
        try:
            prepared = _parse_jsonl(content, self.config)
        except _InvalidLine as error:
            reason = error.message
        except Exception as error:
            # Whatever the file holds, the batch must leave "validating": a batch that stays there
            # would keep a user's sensor waiting until its timeout.
            reason = f"the file could not be read ({type(error).__name__})"
        else:
            outcomes = [self._outcome(batch.batch_id, request) for request in prepared]
            batch.requests.extend(prepared, added_at=at, outcomes=outcomes)
            return
        batch.cancel_by_xai_message = f"JSONL file validation failed: {reason}"
        batch.cancel_time = at
        batch.requests.cancel(at)

    def _batch_json(self, batch: _Batch) -> dict[str, Any]:
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
        if self.config.extra_fields:
            answer["cost_breakdown"] = {"total_cost_in_usd_ticks": store.cost_ticks}
        return answer

    def _metadata(self, store: RequestStore, position: int) -> dict[str, Any]:
        finished = store.finish_time(position)
        return {
            "batch_request_id": store.id_at(position),
            "endpoint": ENDPOINTS[store.kind_at(position)],
            "model": store.model_at(position),
            "state": store.state_at(position),
            "create_time": utc_date(store.added_at(position)),
            "finish_time": utc_date(finished) if finished is not None else None,
        }

    def _result(self, batch_id: str, store: RequestStore, request_id: str, position: int) -> str:
        """One result row as JSON text."""
        state = store.state_at(position)
        if state == SUCCEEDED:
            finished = store.finish_time(position)
            response = render_response_json(
                kind=store.kind_at(position),
                model=store.model_at(position),
                batch_id=batch_id,
                batch_request_id=request_id,
                snippet=store.snippet_at(position),
                prompt_tokens=store.prompt_tokens_at(position),
                image_count=store.image_count_at(position),
                b64_images=store.b64_images_at(position),
                finished_at=finished if finished is not None else 0.0,
            )
            return f'{{"batch_request_id":{quote_json(request_id)},"batch_result":{{"response":{response}}}}}'
        cancelled = state == CANCELLED
        error = CANCELLED_ERROR if cancelled else (store.fixed_error_at(position) or PROCESSING_ERROR)
        return (
            f'{{"batch_request_id":{quote_json(request_id)},"batch_result":{{"error":{quote_json(error)}}}}}'
        )


def _prepare_item(index: int, item: Any, supported: frozenset[str], max_bytes: int) -> PreparedRequest:
    if not isinstance(item, dict):
        raise invalid_argument(f"batch_requests[{index}] must be a JSON object")
    request_id = item.get("batch_request_id")
    if request_id is None or request_id == "":
        request_id = f"batch_request_{uuid.uuid4()}"
    elif not isinstance(request_id, str):
        raise invalid_argument(f"batch_requests[{index}].batch_request_id must be a string")
    if "batch_request" not in item:
        raise invalid_argument(f"batch_requests[{index}].batch_request is required")
    try:
        return prepare_request(
            request_id, item["batch_request"], supported_models=supported, max_request_bytes=max_bytes
        )
    except InvalidRequest as error:
        raise ServiceError.of(error.status, error.message) from None


class _InvalidLine(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _parse_jsonl(content: bytes, config: EmulatorConfig) -> list[PreparedRequest]:
    """Every request of a JSONL input file, or ``_InvalidLine`` naming the first bad line (1-based)."""
    supported = frozenset(config.supported_models)
    prepared: list[PreparedRequest] = []
    seen: set[str] = set()
    for number, raw in enumerate(content.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            line = parse_json(raw, allow_bom=number == 1)
        except InvalidJSON as error:
            raise _InvalidLine(f"line {number}: invalid JSON: {error}") from None
        if not isinstance(line, dict):
            raise _InvalidLine(f"line {number}: expected a JSON object")
        method = line.get("method", "POST")
        if method != "POST":
            raise _InvalidLine(f"line {number}: unsupported method {method!r}")
        url = line.get("url")
        kind = URL_KINDS.get(url) if isinstance(url, str) else None
        if kind is None:
            raise _InvalidLine(f"line {number}: unsupported url {url!r}")
        body = line.get("body")
        if body is None:
            raise _InvalidLine(f"line {number}: missing body")
        custom_id = line.get("custom_id")
        if custom_id is None or custom_id == "":
            custom_id = f"batch_request_{uuid.uuid4()}"
        elif not isinstance(custom_id, str):
            raise _InvalidLine(f"line {number}: custom_id must be a string")
        elif custom_id in seen:
            raise _InvalidLine(f"line {number}: duplicate custom_id '{custom_id}'")
        seen.add(custom_id)
        try:
            prepared.append(
                prepare_request(
                    custom_id,
                    {kind: body},
                    supported_models=supported,
                    max_request_bytes=config.max_request_bytes,
                )
            )
        except InvalidRequest as error:
            raise _InvalidLine(f"line {number}: {error.message}") from None
    if not prepared:
        raise _InvalidLine("the file holds no requests")
    return prepared


def _alive(stored: _File, now: float) -> bool:
    return stored.expires_at is None or now < stored.expires_at


def _file_json(stored: _File) -> dict[str, Any]:
    return {
        "id": stored.file_id,
        "object": "file",
        "bytes": len(stored.content),
        "created_at": stored.created_at,
        "expires_at": stored.expires_at,
        "filename": stored.filename,
        "purpose": "",
    }
