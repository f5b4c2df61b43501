"""Pure translation between common-ai's batch contract and xAI's Batch API; no I/O, no common-ai import.

common-ai identifies one task instance by a 16-character key and one input by a fingerprint. OpenAI
keeps both in batch metadata; xAI has no batch metadata, so both go into the batch *name*, with the
number of requests, which lets a retry tell a complete batch from one its crashed try only half
filled:

>>> name = batch_name("0123456789abcdef", "f" * 64, 12)
>>> name
'llm-batch-0123456789abcdef-ffffffffffffffff-12'
>>> parse_batch_name(name)
BatchIdentity(key16='0123456789abcdef', fingerprint16='ffffffffffffffff', request_count=12)

Requests are chat completions whose ids carry the key and the position, as in common-ai's own
adapters, so results are joined back to the input by index:

>>> native_request("0123456789abcdef", 3, {"model": "grok-4.3", "messages": []})["batch_request_id"]
'0123456789abcdef-3'
>>> index_of("0123456789abcdef-3")
3
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_xai_batch.client.models import Batch, BatchResult, BatchStatus

NAME_PREFIX = "llm-batch"
FINGERPRINT_CHARS = 16
REQUEST_KIND = "chat_get_completion"

_NAME_PATTERN = re.compile(
    rf"^{NAME_PREFIX}-(?P<key>[0-9a-f]{{16}})-(?P<fingerprint>[0-9a-f]{{{FINGERPRINT_CHARS}}})-(?P<count>\d+)$"
)

# common-ai's status vocabulary: everything not terminal on xAI is still "in_progress".
_STATUS: dict[BatchStatus, str] = {
    BatchStatus.EMPTY: "in_progress",
    BatchStatus.VALIDATING: "in_progress",
    BatchStatus.PROCESSING: "in_progress",
    BatchStatus.COMPLETED: "completed",
    BatchStatus.CANCELLED: "cancelled",
    BatchStatus.FAILED: "failed",
    BatchStatus.EXPIRED: "expired",
}

# Timestamps of xAI batches are dates only; a batch created shortly before midnight must still
# count as created "after" an intent written just after it.
_CLOCK_SLACK = timedelta(minutes=5)


@dataclass(frozen=True)
class BatchIdentity:
    """What a batch name says about the task instance and input that created it."""

    key16: str
    fingerprint16: str
    request_count: int


def batch_name(key16: str, fingerprint: str, request_count: int) -> str:
    """The batch name for one task instance's input: key, fingerprint prefix and request count."""
    return f"{NAME_PREFIX}-{key16}-{fingerprint[:FINGERPRINT_CHARS]}-{request_count}"


def parse_batch_name(name: str | None) -> BatchIdentity | None:
    """The identity in a name :func:`batch_name` made, or ``None`` for any other name."""
    match = _NAME_PATTERN.match(name or "")
    if match is None:
        return None
    return BatchIdentity(match["key"], match["fingerprint"], int(match["count"]))


def request_id(key16: str, index: int) -> str:
    """The request id for input position ``index``: common-ai's own ``{key}-{index}`` form."""
    return f"{key16}-{index}"


def index_of(batch_request_id: str) -> int:
    """The input position a request id carries; ``ValueError`` for an id this adapter did not make.

    >>> index_of("batch_request_1f3c")
    Traceback (most recent call last):
    ...
    ValueError: request id 'batch_request_1f3c' does not end in an input position
    """
    _, _, tail = batch_request_id.rpartition("-")
    if not tail.isdigit():
        raise ValueError(f"request id {batch_request_id!r} does not end in an input position")
    return int(tail)


def chat_body(
    *,
    prompt: str,
    model: str,
    system_prompt: str | None,
    max_tokens: int,
    params: Mapping[str, Any] | None,
    directive: Mapping[str, Any],
) -> dict[str, Any]:
    """One chat completion body; the keys the adapter manages win over user ``params``.

    >>> chat_body(prompt="Hi", model="grok-4.3", system_prompt="Be brief", max_tokens=64,
    ...           params={"temperature": 0.2, "model": "other"}, directive={})
    ... # doctest: +NORMALIZE_WHITESPACE
    {'temperature': 0.2, 'model': 'grok-4.3', 'messages': [{'role': 'system', 'content': 'Be brief'},
     {'role': 'user', 'content': 'Hi'}], 'max_tokens': 64}
    """
    messages: list[dict[str, str]] = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    messages.append({"role": "user", "content": prompt})
    body: dict[str, Any] = {
        **(params or {}),
        "model": model,
        "messages": messages,
        "max_tokens": max_tokens,
        **directive,
    }
    # Either spelling of the cap would do; two caps would leave the service to pick one.
    body.pop("max_completion_tokens", None)
    body.pop("stream", None)
    return body


def native_request(key16: str, index: int, body: dict[str, Any]) -> dict[str, Any]:
    """The request in xAI's native shape, with its deterministic id."""
    return {"batch_request_id": request_id(key16, index), "batch_request": {REQUEST_KIND: body}}


def structured_output_directive(schema_name: str, json_schema: Mapping[str, Any]) -> dict[str, Any]:
    """xAI's OpenAI-compatible ``response_format`` for a JSON schema (not strict, as common-ai asks)."""
    return {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": schema_name, "schema": dict(json_schema), "strict": False},
        }
    }


def status_of(batch: Batch) -> str:
    """The batch's status in common-ai's vocabulary (``in_progress``, ``completed``, ...)."""
    return _STATUS[batch.status]


def counts_of(batch: Batch) -> dict[str, int]:
    """Per-outcome counts from the batch's counters, in common-ai's ``{succeeded, errored, ...}`` shape.

    Requests still pending when a batch expired will never have a result; they are reported as
    expired so that common-ai's manifest accounts for them.
    """
    state = batch.state
    expired = state.num_pending if batch.status is BatchStatus.EXPIRED else 0
    return {
        "succeeded": state.num_success,
        "errored": state.num_error,
        "expired": expired,
        "cancelled": state.num_cancelled,
    }


def usable_for(batch: Batch, identity: BatchIdentity, *, not_before: datetime | None) -> bool:
    """Whether ``batch`` is a complete, usable batch of ``identity`` created at or after ``not_before``."""
    if parse_batch_name(batch.name) != identity:
        return False
    if not batch.is_reusable:
        return False
    # A crash while adding leaves fewer requests than the name promises: not a batch to wait on.
    if batch.state.num_requests != identity.request_count:
        return False
    if not_before is None or batch.create_time is None:
        return True
    earliest = (not_before - _CLOCK_SLACK).astimezone(timezone.utc)
    return batch.create_time.date() >= earliest.date()


@dataclass(frozen=True)
class ChatOutcome:
    """The fields common-ai reads from one result, whatever its outcome."""

    status: str
    """``success``, ``errored`` or ``cancelled`` (common-ai's per-item vocabulary)."""
    content: str | None
    model: str | None
    usage: dict[str, int] | None
    finish_reason: str | None
    error: str | None


def chat_outcome(result: BatchResult) -> ChatOutcome:
    """Read one xAI result: the message text, model, token counts and cost, or the error.

    >>> ok = BatchResult.model_validate({"batch_request_id": "k-0", "batch_result": {"response": {
    ...     "chat_get_completion": {"model": "grok-4.3", "choices": [{"message": {"content": "Hi"},
    ...     "finish_reason": "stop"}], "usage": {"prompt_tokens": 5, "completion_tokens": 1,
    ...     "cost_in_usd_ticks": 900}}}}})
    >>> chat_outcome(ok).content, chat_outcome(ok).usage
    ('Hi', {'input_tokens': 5, 'output_tokens': 1, 'cost_in_usd_ticks': 900})
    """
    if not result.succeeded:
        status = "cancelled" if result.is_cancelled else "errored"
        return ChatOutcome(status, None, None, None, None, result.error)
    response = result.response or {}
    choices = response.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    content = message.get("content") if isinstance(message, dict) else None
    usage = response.get("usage") if isinstance(response.get("usage"), dict) else {}
    assert isinstance(usage, dict)
    return ChatOutcome(
        status="success",
        content=content if isinstance(content, str) else None,
        model=response.get("model"),
        usage={
            "input_tokens": int(usage.get("prompt_tokens") or 0),
            "output_tokens": int(usage.get("completion_tokens") or 0),
            "cost_in_usd_ticks": result.cost_in_usd_ticks,
        },
        finish_reason=choice.get("finish_reason"),
        error=None,
    )
