"""One page of results, as xAI sends it, turned into ``succeeded.jsonl`` and ``failed.jsonl`` lines.

The same lines feed the Parquet tables (:mod:`.table`) when that format is asked for.

A page is decoded into structs the garbage collector does not track, with each response payload
left as raw JSON: a few objects per row instead of dozens, and the payload is copied into its line
as it stands. Lines are built as structs too and encoded a page at a time. Together that is most
of what exporting a big batch costs, beyond downloading it.

>>> counts = RowCounts()
>>> succeeded, failed = encode_page_body(
...     b'{"results": [{"batch_request_id": "a", "batch_result": {"error": "Batch cancelled"}}]}', counts)
>>> failed, counts.cancelled
(b'{"batch_request_id":"a","error":"Batch cancelled"}\\n', 1)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import pydantic

from airflow_provider_xai_batch.client import BatchResult, XAIError, protocol
from airflow_provider_xai_batch.client.inputs import RESULT_KEYS
from airflow_provider_xai_batch.client.models import CANCELLED_ERROR
from airflow_provider_xai_batch.results.metadata import MetadataEntry, MetadataLookup, metadata_value

# Compact UTF-8 JSON lines straight to bytes, a page at a time; msgspec (which Airflow's task SDK
# requires) does it several times faster than ``json``, and this is the hot loop of an export.
_encode_lines = msgspec.json.Encoder().encode_lines
_CANCELLED = CANCELLED_ERROR.lower()


@dataclass
class RowCounts:
    """What has been written so far; rows are expected in ``batch_request_id`` order."""

    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    cost_ticks: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    unrecognised: int = 0
    last_id: str | None = None

    @property
    def total(self) -> int:
        return self.succeeded + self.failed


class _Usage(msgspec.Struct, gc=False):
    cost_in_usd_ticks: Any = None


class _Costed(msgspec.Struct, gc=False):
    usage: _Usage | None = None


class _Result(msgspec.Struct, gc=False):
    response: dict[str, msgspec.Raw] | None = None
    error: Any = None


class _Row(msgspec.Struct, gc=False):
    batch_request_id: str
    batch_result: _Result | None = None
    error_message: Any = None


class _Page(msgspec.Struct, gc=False):
    results: list[_Row] | None = None


class _SucceededLine(msgspec.Struct, gc=False, omit_defaults=True):
    batch_request_id: str
    kind: str
    response: msgspec.Raw
    metadata: msgspec.Raw | None = None


class _FailedLine(msgspec.Struct, gc=False, omit_defaults=True):
    batch_request_id: str
    error: str
    kind: str | None = None
    metadata: msgspec.Raw | None = None


def _extras(entry: MetadataEntry | None) -> tuple[str | None, msgspec.Raw | None]:
    """The result key of the request's kind and its metadata, from its sidecar entry."""
    if entry is None:
        return None, None
    kind = RESULT_KEYS.get(entry.kind or "", entry.kind)
    return kind, (msgspec.Raw(entry.metadata) if entry.metadata is not None else None)


_PAGE_DECODER = msgspec.json.Decoder(_Page)
_COST_DECODER = msgspec.json.Decoder(_Costed)
_OPEN_BRACE = ord("{")


def encode_page_body(
    body: bytes, counts: RowCounts, lookup: MetadataLookup | None = None
) -> tuple[bytes, bytes]:
    """One page of results, as the service sent it, as ``succeeded.jsonl`` and ``failed.jsonl`` lines.

    The usual shapes (an object payload under one kind; a plain-string error) take a fast path;
    anything else follows :class:`~airflow_provider_xai_batch.client.BatchResult`, which tolerates
    every known variant. A row repeating the previous id (a page boundary served twice) is skipped
    and counted; ``counts`` carries that across pages. With ``lookup`` (the input's sidecar), each
    row gains its input item's ``"metadata"``, and a failed row the ``"kind"`` it was sent as.

    >>> counts = RowCounts()
    >>> encode_page_body(b'''{"results": [
    ...     {"batch_request_id": "a", "batch_result": {"response": {"chat_get_completion": {"id": "x"}}}},
    ...     {"batch_request_id": "b", "batch_result": {"error": "Batch cancelled"}}]}''', counts)
    (b'{"batch_request_id":"a","kind":"chat_get_completion","response":{"id":"x"}}\\n', \
b'{"batch_request_id":"b","error":"Batch cancelled"}\\n')
    >>> counts.succeeded, counts.failed, counts.cancelled
    (1, 1, 1)
    """
    if not body:
        return b"", b""
    find = lookup.get if lookup is not None else _no_entry
    try:
        if _looks_spaced(body):
            # Payloads are copied into their lines as they stand, so a page that is not compact is
            # compacted first: one line per row, and the same bytes however xAI spaced its JSON.
            body = msgspec.json.format(body, indent=-1)
        rows = _PAGE_DECODER.decode(body).results or []
    except (msgspec.DecodeError, msgspec.ValidationError):
        return _encode_odd_page(_generic_rows(body), counts, find)
    lines = _PageLines(counts)
    succeeded, failed = lines.succeeded, lines.failed
    decode_cost = _COST_DECODER.decode
    last_id = counts.last_id
    cost = 0
    cancelled = 0
    for row in rows:
        request_id = row.batch_request_id
        if last_id is not None and request_id <= last_id:
            if request_id == last_id:
                counts.duplicates += 1
                continue
            counts.out_of_order += 1
        last_id = request_id
        entry = find(request_id)
        result = row.batch_result
        if result is not None and row.error_message is None:
            response = result.response
            error = result.error
            if error is None and response is not None and len(response) == 1:
                ((kind, raw),) = response.items()
                if memoryview(raw)[0] == _OPEN_BRACE:
                    succeeded.append(
                        _SucceededLine(request_id, kind, raw)
                        if entry is None
                        else _SucceededLine(request_id, kind, raw, _extras(entry)[1])
                    )
                    try:
                        usage = decode_cost(raw).usage
                    except (msgspec.ValidationError, msgspec.DecodeError):  # not an object: no cost
                        continue
                    if usage is not None:
                        ticks = usage.cost_in_usd_ticks
                        if type(ticks) is int or type(ticks) is float:
                            cost += int(ticks)
                    continue
            elif response is None and type(error) is str:
                failed.append(_FailedLine(request_id, error, *_extras(entry)))
                if error == CANCELLED_ERROR or error.strip().lower() == _CANCELLED:
                    cancelled += 1
                continue
        lines.add_by_model_rules(request_id, _as_dict(row), entry)
    counts.last_id = last_id
    lines.cost += cost
    lines.cancelled += cancelled
    return lines.done()


def _looks_spaced(body: bytes) -> bool:
    # A serializer spaces consistently, so its first bytes (structure, before any long text) tell;
    # line breaks are looked for everywhere, as they alone would break the JSONL.
    head = body[:256]
    return (
        b"\n" in body or b"\r" in body or b'": ' in head or b', "' in head or b"{ " in head or b"[ " in head
    )


class _PageLines:
    """The lines of one page, and what they add to the counts once the page is done."""

    def __init__(self, counts: RowCounts) -> None:
        self.counts = counts
        self.succeeded: list[Any] = []
        self.failed: list[Any] = []
        self.cost = 0
        self.cancelled = 0

    def add_by_model_rules(self, request_id: str, row: dict[str, Any], entry: MetadataEntry | None) -> None:
        # Rare shapes (error objects, a top-level error_message, odd payloads): the model's rules.
        try:
            parsed = BatchResult.model_validate(row)
        except pydantic.ValidationError:
            # Still one line, so that every id is accounted for; the raw row says what came.
            self.failed.append(_FailedLine(request_id, f"unrecognised result: {row}", *_extras(entry)))
            self.counts.unrecognised += 1
            return
        if parsed.succeeded:
            line: dict[str, Any] = {
                "batch_request_id": request_id,
                "kind": parsed.response_kind,
                "response": parsed.response,
            }
            if entry is not None and entry.metadata is not None:
                line["metadata"] = metadata_value(entry.metadata)
            self.succeeded.append(line)
            self.cost += parsed.cost_in_usd_ticks
        else:
            self.failed.append(_FailedLine(request_id, parsed.error or "", *_extras(entry)))
            self.cancelled += parsed.is_cancelled

    def done(self) -> tuple[bytes, bytes]:
        counts = self.counts
        counts.succeeded += len(self.succeeded)
        counts.failed += len(self.failed)
        counts.cancelled += self.cancelled
        counts.cost_ticks += self.cost
        return _encode_lines(self.succeeded), _encode_lines(self.failed)


def _no_entry(request_id: str) -> MetadataEntry | None:
    return None


def _encode_odd_page(
    rows: list[Any], counts: RowCounts, find: Callable[[str], MetadataEntry | None]
) -> tuple[bytes, bytes]:
    """A page the fast decoder refused (a row of an unexpected shape): every row by the model's rules."""
    lines = _PageLines(counts)
    for row in rows:
        request_id = row.get("batch_request_id") if isinstance(row, dict) else None
        if not isinstance(request_id, str):
            raise XAIError(f"a result row has no batch_request_id: {str(row)[:200]}")
        last_id = counts.last_id
        if last_id is not None and request_id <= last_id:
            if request_id == last_id:
                counts.duplicates += 1
                continue
            counts.out_of_order += 1
        counts.last_id = request_id
        lines.add_by_model_rules(request_id, row, find(request_id))
    return lines.done()


def _decode(data: bytes | msgspec.Raw) -> Any:
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError:
        # json also takes what msgspec refuses (integers beyond 64 bits, NaN).
        return json.loads(bytes(memoryview(data)))


def _generic_rows(body: bytes) -> list[Any]:
    try:
        payload = _decode(body)
    except ValueError as error:
        raise XAIError(f"a page of results is not JSON: {error}") from None
    try:
        return protocol.parse_page(payload, "results")[0]
    except ValueError as error:
        raise XAIError(f"a page of results has an unexpected shape: {error}") from None


def _as_dict(row: _Row) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if row.batch_result is not None:
        if row.batch_result.response is not None:
            response = row.batch_result.response
            result["response"] = {kind: _decode(raw) for kind, raw in response.items()}
        if row.batch_result.error is not None:
            result["error"] = row.batch_result.error
    item: dict[str, Any] = {"batch_request_id": row.batch_request_id, "batch_result": result}
    if row.error_message is not None:
        item["error_message"] = row.error_message
    return item
