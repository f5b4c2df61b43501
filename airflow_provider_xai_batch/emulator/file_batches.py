"""File batches: counting a file's requests at creation, and validating and ingesting its JSONL later.

Ingestion is all or nothing: the first bad line cancels the batch with a message naming it, as the
service does, and the batch never holds part of a file.
"""

from __future__ import annotations

from airflow_provider_xai_batch.emulator.config import EmulatorConfig
from airflow_provider_xai_batch.emulator.outcomes import OutcomeDecider
from airflow_provider_xai_batch.emulator.payloads import (
    URL_KINDS,
    InvalidRequest,
    PreparedRequest,
    given_or_new_request_id,
    prepare_request,
)
from airflow_provider_xai_batch.emulator.records import BatchRecord
from airflow_provider_xai_batch.emulator.strict_json import InvalidJSON, parse_json


def count_file_requests(content: bytes) -> int:
    """How many requests (non-blank lines) a JSONL file holds.

    >>> count_file_requests(b'{"a": 1}\\n\\n{"b": 2}\\n')
    2
    """
    return sum(1 for line in content.split(b"\n") if line.strip())


def ingest_file(batch: BatchRecord, config: EmulatorConfig, outcomes: OutcomeDecider) -> None:
    """Admit every request of the batch's pending file, or cancel the batch naming the first bad line."""
    content, at = batch.pending_file, batch.ingest_at
    assert content is not None and at is not None
    batch.pending_file = None
    try:
        prepared = parse_jsonl(content, config)
    except InvalidLine as error:
        reason = error.message
    except Exception as error:
        # Whatever the file holds, the batch must leave "validating": a batch that stays there
        # would keep a user's sensor waiting until its timeout.
        reason = f"the file could not be read ({type(error).__name__})"
    else:
        decided = [outcomes.decide(config, batch.batch_id, request) for request in prepared]
        batch.requests.extend(prepared, added_at=at, outcomes=decided)
        return
    batch.cancel_by_xai_message = f"JSONL file validation failed: {reason}"
    batch.cancel_time = at
    batch.requests.cancel(at)


class InvalidLine(Exception):
    """A JSONL input file the service refuses; ``message`` names the first bad line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse_jsonl(content: bytes, config: EmulatorConfig) -> list[PreparedRequest]:
    """Every request of a JSONL input file, or ``InvalidLine`` naming the first bad line (1-based).

    >>> parse_jsonl(b'{"url": "/v1/nowhere", "body": {}}', EmulatorConfig())
    Traceback (most recent call last):
    ...
    airflow_provider_xai_batch.emulator.file_batches.InvalidLine: line 1: unsupported url '/v1/nowhere'
    """
    supported = frozenset(config.supported_models)
    prepared: list[PreparedRequest] = []
    seen: set[str] = set()
    for number, raw in enumerate(content.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            line = parse_json(raw, allow_bom=number == 1)
        except InvalidJSON as error:
            raise InvalidLine(f"line {number}: invalid JSON: {error}") from None
        if not isinstance(line, dict):
            raise InvalidLine(f"line {number}: expected a JSON object")
        method = line.get("method", "POST")
        if method != "POST":
            raise InvalidLine(f"line {number}: unsupported method {method!r}")
        url = line.get("url")
        kind = URL_KINDS.get(url) if isinstance(url, str) else None
        if kind is None:
            raise InvalidLine(f"line {number}: unsupported url {url!r}")
        body = line.get("body")
        if body is None:
            raise InvalidLine(f"line {number}: missing body")
        custom_id = given_or_new_request_id(line.get("custom_id"))
        if custom_id is None:
            raise InvalidLine(f"line {number}: custom_id must be a string")
        if custom_id in seen:
            raise InvalidLine(f"line {number}: duplicate custom_id '{custom_id}'")
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
            raise InvalidLine(f"line {number}: {error.message}") from None
    if not prepared:
        raise InvalidLine("the file holds no requests")
    return prepared
