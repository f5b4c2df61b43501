"""Pydantic models of the wire contract, tolerant of every variant the service is known to send.

Unknown fields are kept (``extra="allow"``) so that nothing the service adds is lost on a round
trip through XCom, and nothing the client does not know breaks parsing.

>>> batch = Batch.model_validate({
...     "batch_id": "batch_1", "name": "nightly", "create_time": "2026-08-28",
...     "expire_time": "2026-09-27", "state": {"num_requests": 2, "num_pending": 0, "num_success": 2},
... })
>>> batch.status_on(date(2026, 8, 29))
<BatchStatus.COMPLETED: 'completed'>
"""

from __future__ import annotations

import enum
from datetime import date, datetime, time, timezone
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

CANCELLED_ERROR = "Batch cancelled"


def _parse_time(value: Any) -> Any:
    """Accept date-only ``YYYY-MM-DD``, RFC 3339 and unix seconds; always return an aware datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=timezone.utc)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    if isinstance(value, str):
        text = value.strip()
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=timezone.utc)
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return value


Timestamp = Annotated[datetime | None, BeforeValidator(_parse_time)]


class _WireModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class BatchStatus(str, enum.Enum):
    """Status derived from a batch (the service sends none).

    >>> BatchStatus.COMPLETED.is_terminal, BatchStatus.EMPTY.is_terminal
    (True, False)
    """

    EMPTY = "empty"
    VALIDATING = "validating"
    PROCESSING = "processing"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        """Whether the batch will never change status again on its own."""
        return self in _TERMINAL

    def __str__(self) -> str:
        return self.value


_TERMINAL = frozenset({BatchStatus.COMPLETED, BatchStatus.CANCELLED, BatchStatus.FAILED, BatchStatus.EXPIRED})


_NOT_REUSABLE = frozenset({BatchStatus.CANCELLED, BatchStatus.FAILED, BatchStatus.EXPIRED})


class BatchState(_WireModel):
    """The counters of a batch. Settled: ``num_requests == pending + success + error + cancelled``."""

    num_requests: int = 0
    num_pending: int = 0
    num_success: int = 0
    num_error: int = 0
    num_cancelled: int = 0

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_zero(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: (0 if value is None else value) for key, value in data.items()}
        return data


class Batch(_WireModel):
    """One batch as the service describes it; :attr:`status` is derived per the wire contract.

    >>> Batch(batch_id="batch_1").status
    <BatchStatus.EMPTY: 'empty'>
    """

    batch_id: str
    name: str | None = None
    create_time: Timestamp = None
    expire_time: Timestamp = None
    create_api_key_id: str | None = None
    cancel_time: Timestamp = None
    cancel_by_xai_message: str | None = None
    state: BatchState = Field(default_factory=BatchState)
    input_file_id: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _tolerate_shapes(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            if "batch_id" not in data and "id" in data:
                data["batch_id"] = data["id"]
            if data.get("state") is None:
                data["state"] = {}
        return data

    @property
    def is_file_batch(self) -> bool:
        """Whether the batch was created from an uploaded JSONL file (and so is sealed)."""
        return bool(self.input_file_id)

    def is_expired_on(self, today: date, now: datetime | None = None) -> bool:
        """Whether ``expire_time`` lies in the past (date-only times: the expiry date is before today)."""
        if self.expire_time is None:
            return False
        if self.expire_time.timetz().replace(tzinfo=None) != time() and now is not None:
            return self.expire_time < now
        return self.expire_time.date() < today

    def status_on(self, today: date, now: datetime | None = None) -> BatchStatus:
        """The status as seen on ``today`` (UTC), following the wire contract's order exactly."""
        if self.cancel_by_xai_message:
            return BatchStatus.FAILED
        if self.cancel_time is not None:
            return BatchStatus.CANCELLED
        counters = self.state
        if counters.num_pending > 0 and self.is_expired_on(today, now):
            return BatchStatus.EXPIRED
        if self.is_file_batch and counters.num_requests == 0:
            return BatchStatus.VALIDATING
        if counters.num_pending > 0:
            return BatchStatus.PROCESSING
        if counters.num_requests > 0:
            return BatchStatus.COMPLETED
        return BatchStatus.EMPTY

    @property
    def status(self) -> BatchStatus:
        """The status now (UTC)."""
        now = datetime.now(timezone.utc)
        return self.status_on(now.date(), now)

    @property
    def is_terminal(self) -> bool:
        """Whether the batch is completed, cancelled, failed or expired."""
        return self.status.is_terminal

    @property
    def is_reusable(self) -> bool:
        """Whether a job may re-attach to this batch: it is not cancelled, failed or expired.

        A completed batch is reusable (its results are still to be read); an empty one too.

        >>> Batch(batch_id="batch_1").is_reusable, Batch(batch_id="b", cancel_time="2026-01-01").is_reusable
        (True, False)
        """
        return self.status not in _NOT_REUSABLE

    def to_xcom(self) -> dict[str, Any]:
        """A JSON-safe dict of the batch with its derived ``status`` added, for XCom and events."""
        payload = self.model_dump(mode="json")
        payload["status"] = self.status.value
        return payload


class BatchResult(_WireModel):
    """The outcome of one request: a response of some kind, or an error string.

    Tolerates ``batch_result.error`` as a plain string (the real form), as a ``{"code", "message"}``
    object, and a top-level ``error_message``.

    >>> r = BatchResult.model_validate({"batch_request_id": "a", "batch_result": {"error": "Batch cancelled"}})
    >>> (r.succeeded, r.error, r.is_cancelled)
    (False, 'Batch cancelled', True)
    """

    batch_request_id: str
    batch_result: dict[str, Any] = Field(default_factory=dict)
    error_message: str | None = None

    @property
    def response_kind(self) -> str | None:
        """The payload key of a success (``chat_get_completion``, ``image_generation`` ...)."""
        response = self.batch_result.get("response")
        if isinstance(response, dict) and response:
            return str(next(iter(response)))
        return None

    @property
    def response(self) -> dict[str, Any] | None:
        """The success payload (the endpoint's usual response body), or ``None`` on failure."""
        kind = self.response_kind
        if kind is None:
            return None
        payload = self.batch_result["response"][kind]
        return payload if isinstance(payload, dict) else {"value": payload}

    @property
    def succeeded(self) -> bool:
        return self.response is not None and self.error is None

    @property
    def error(self) -> str | None:
        """The failure message as plain text, whichever shape it came in."""
        raw = self.batch_result.get("error")
        if raw is None:
            raw = self.error_message
        if raw is None:
            return None if self.response_kind else "no result payload"
        if isinstance(raw, dict):
            message = raw.get("message") or raw.get("error") or raw.get("code")
            return str(message) if message is not None else str(raw)
        return str(raw)

    @property
    def is_cancelled(self) -> bool:
        """Whether the request failed only because its batch was cancelled."""
        error = self.error
        return error is not None and error.strip().lower() == CANCELLED_ERROR.lower()

    @property
    def cost_in_usd_ticks(self) -> int:
        """Cost of this request in ticks (1 tick = 1e-10 USD); 0 when not reported."""
        response = self.response
        usage = response.get("usage") if response else None
        if isinstance(usage, dict):
            ticks = usage.get("cost_in_usd_ticks")
            if isinstance(ticks, (int, float)):
                return int(ticks)
        return 0


class BatchRequestMetadata(_WireModel):
    """Per-request metadata: ``state`` is one of unknown, pending, succeeded, failed, cancelled."""

    batch_request_id: str
    endpoint: str | None = None
    model: str | None = None
    state: str = "unknown"
    create_time: Timestamp = None
    finish_time: Timestamp = None


class UploadedFile(_WireModel):
    """A file uploaded for a file batch (unix-second timestamps on the wire)."""

    id: str
    object: str = "file"
    bytes: int | None = None
    created_at: Timestamp = None
    expires_at: Timestamp = None
    filename: str | None = None
    purpose: str | None = None
