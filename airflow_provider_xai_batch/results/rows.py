"""One page of results, as xAI sends it, decoded once into the lines of ``succeeded`` and ``failed``.

The same decoded page feeds either kind of data file: encoded as JSONL lines, or handed to the
Parquet tables (:mod:`.table`) as it is.

A page is decoded into structs the garbage collector does not track, with each response payload
left as raw JSON: a few objects per row instead of dozens, and the payload is copied into its line
as it stands. Lines are built as structs too and encoded a page at a time. The payloads are then
read once more, all in one decoder call: for their costs, or for the table's columns and costs
together. Together that is most of what exporting a big batch costs, beyond downloading it.

>>> counts = RowCounts()
>>> succeeded, failed = encode_page_body(
...     b'{"results": [{"batch_request_id": "a", "batch_result": {"error": "Batch cancelled"}}]}', counts)
>>> failed, counts.cancelled
(b'{"batch_request_id":"a","error":"Batch cancelled"}\\n', 1)
"""

from __future__ import annotations

import contextlib
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


class SucceededLine(msgspec.Struct, gc=False, omit_defaults=True):
    """One ``succeeded.jsonl`` line: the payload and metadata kept as the raw JSON they came as."""

    batch_request_id: str
    kind: str
    response: msgspec.Raw
    metadata: msgspec.Raw | None = None


class FailedLine(msgspec.Struct, gc=False, omit_defaults=True):
    """One ``failed.jsonl`` line (``attempts`` is set by a resubmission export only)."""

    batch_request_id: str
    error: str
    kind: str | None = None
    metadata: msgspec.Raw | None = None
    attempts: int | None = None


def _extras(entry: MetadataEntry | None) -> tuple[str | None, msgspec.Raw | None]:
    """The result key of the request's kind and its metadata, from its sidecar entry."""
    if entry is None:
        return None, None
    kind = RESULT_KEYS.get(entry.kind or "", entry.kind)
    return kind, (msgspec.Raw(entry.metadata) if entry.metadata is not None else None)


_PAGE_DECODER = msgspec.json.Decoder(_Page)
_COST_DECODER = msgspec.json.Decoder(_Costed)
_COSTS_DECODER = msgspec.json.Decoder(list[_Costed])
_OPEN_BRACE = ord("{")
_encode = msgspec.json.Encoder().encode

PayloadReader = Callable[[bytes], tuple[list[Any], int]]
"""Reads a page's payloads, given as one JSON array, into what a data file needs; returns them and their cost.

Raises ``msgspec.ValidationError`` (or ``DecodeError``) for a page it does not take whole; the page's
costs are then read as :func:`read_costs` reads them.
"""


def read_costs(payloads: bytes) -> int:
    """The total cost of a page's payloads (``usage.cost_in_usd_ticks``), given as one JSON array.

    >>> read_costs(b'[{"usage": {"cost_in_usd_ticks": 5}}, {"id": "x"}, {"usage": {"cost_in_usd_ticks": 2.0}}]')
    7
    """
    cost = 0
    for costed in _COSTS_DECODER.decode(payloads):
        usage = costed.usage
        if usage is not None:
            ticks = usage.cost_in_usd_ticks
            if type(ticks) is int or type(ticks) is float:
                cost += int(ticks)
    return cost


class ResultPage:
    """One page of results, decoded once: its lines as structs, ready for either kind of data file.

    ``responses`` is what the page's :data:`PayloadReader` made of the payloads, one per succeeded
    line, or ``None`` when the reader did not take the page (the Parquet sink then reads the lines).
    """

    __slots__ = ("failed", "responses", "succeeded")

    def __init__(
        self, succeeded: list[SucceededLine], failed: list[FailedLine], responses: list[Any] | None = None
    ) -> None:
        self.succeeded = succeeded
        self.failed = failed
        self.responses = responses

    def succeeded_lines(self) -> bytes:
        """The ``succeeded.jsonl`` lines of the page."""
        return _encode_lines(self.succeeded)

    def failed_lines(self) -> bytes:
        """The ``failed.jsonl`` lines of the page."""
        return _encode_lines(self.failed)

    @property
    def kinds(self) -> set[str]:
        """The payload kinds of the succeeded lines (a media step looks at pages of image kinds only)."""
        return {line.kind for line in self.succeeded}


def encode_page_body(
    body: bytes, counts: RowCounts, lookup: MetadataLookup | None = None
) -> tuple[bytes, bytes]:
    """One page of results, as the service sent it, as ``succeeded.jsonl`` and ``failed.jsonl`` lines.

    The lines of :func:`decode_page`, encoded.

    >>> counts = RowCounts()
    >>> encode_page_body(b'''{"results": [
    ...     {"batch_request_id": "a", "batch_result": {"response": {"chat_get_completion": {"id": "x"}}}},
    ...     {"batch_request_id": "b", "batch_result": {"error": "Batch cancelled"}}]}''', counts)
    (b'{"batch_request_id":"a","kind":"chat_get_completion","response":{"id":"x"}}\\n', \
b'{"batch_request_id":"b","error":"Batch cancelled"}\\n')
    >>> counts.succeeded, counts.failed, counts.cancelled
    (1, 1, 1)
    """
    page = decode_page(body, counts, lookup)
    return page.succeeded_lines(), page.failed_lines()


def decode_page(
    body: bytes,
    counts: RowCounts,
    lookup: MetadataLookup | None = None,
    reader: PayloadReader | None = None,
) -> ResultPage:
    """One page of results, as the service sent it, as the lines of the data files; ``counts`` adds it up.

    The usual shapes (an object payload under one kind; a plain-string error) take a fast path;
    anything else follows :class:`~airflow_provider_xai_batch.client.BatchResult`, which tolerates
    every known variant. A row repeating the previous id (a page boundary served twice) is skipped
    and counted; ``counts`` carries that across pages. With ``lookup`` (the input's sidecar), each
    row gains its input item's ``"metadata"``, and a failed row the ``"kind"`` it was sent as.

    The payloads of the page are read once, all together: by ``reader`` when one is given (the
    Parquet sink's, which digs its columns and the costs out of them in the same call), otherwise
    for their costs only.

    >>> page = decode_page(b'{"results": [{"batch_request_id": "a", "batch_result": {"response": '
    ...     b'{"chat_get_completion": {"usage": {"cost_in_usd_ticks": 9}}}}}]}', counts := RowCounts())
    >>> page.succeeded[0].kind, counts.cost_ticks
    ('chat_get_completion', 9)
    """
    if not body:
        return ResultPage([], [])
    find: Callable[[str], MetadataEntry | None] = lookup.get if lookup is not None else _no_entry
    try:
        if _looks_spaced(body):
            # Payloads are copied into their lines as they stand, so a page that is not compact is
            # compacted first: one line per row, and the same bytes however xAI spaced its JSON.
            body = msgspec.json.format(body, indent=-1)
        rows = _PAGE_DECODER.decode(body).results or []
    except (msgspec.DecodeError, msgspec.ValidationError):
        return _odd_page(_generic_rows(body), counts, find)
    found: dict[str, MetadataEntry | None] = {}
    if lookup is not None:
        # A lookup only moves forward: the entries found are kept in case the page is read again.
        def find(request_id: str) -> MetadataEntry | None:
            found[request_id] = entry = lookup.get(request_id)
            return entry

    lines = _PageLines(counts)
    lines.add_rows(rows, find, careful=False)
    # Every payload read in one call: one decoder call per page instead of one per row, and it is
    # also the check that each payload is an object (a row whose payload is not takes the model's
    # rules, below).
    joined = b"[" + b",".join(lines.payloads) + b"]"
    responses = None
    if reader is not None and len(lines.payloads) == len(lines.succeeded):
        with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
            responses, lines.cost = reader(joined)
    if responses is None:
        try:
            lines.cost = read_costs(joined)
        except (msgspec.DecodeError, msgspec.ValidationError):
            # A payload that is not an object, or an odd cost: the page again, row by row.
            lines = _PageLines(counts)
            lines.add_rows(rows, found.get if lookup is not None else _no_entry, careful=True)
    return lines.done(responses)


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
        self.succeeded: list[SucceededLine] = []
        self.failed: list[FailedLine] = []
        # The raw payloads of the fast path's succeeded lines, to be read all at once.
        self.payloads: list[msgspec.Raw] = []
        self.last_id = counts.last_id
        self.cost = 0
        self.cancelled = 0
        self.duplicates = 0
        self.out_of_order = 0
        self.unrecognised = 0

    def add_rows(
        self, rows: list[_Row], find: Callable[[str], MetadataEntry | None], *, careful: bool
    ) -> None:
        """Add a decoded page's rows; ``careful`` also checks each payload and reads its cost alone."""
        succeeded, failed, payloads = self.succeeded, self.failed, self.payloads
        last_id = self.last_id
        cancelled = 0
        for row in rows:
            request_id = row.batch_request_id
            # admit(), inlined: a call per row is a tenth of this loop's time.
            if last_id is not None and request_id <= last_id:
                if request_id == last_id:
                    self.duplicates += 1
                    continue
                self.out_of_order += 1
            last_id = request_id
            entry = find(request_id)
            result = row.batch_result
            if result is not None and row.error_message is None:
                response = result.response
                error = result.error
                if error is None and response is not None and len(response) == 1:
                    ((kind, raw),) = response.items()
                    if not careful or memoryview(raw)[0] == _OPEN_BRACE:
                        succeeded.append(
                            SucceededLine(request_id, kind, raw)
                            if entry is None
                            else SucceededLine(request_id, kind, raw, _extras(entry)[1])
                        )
                        payloads.append(raw)
                        continue
                elif response is None and type(error) is str:
                    failed.append(FailedLine(request_id, error, *_extras(entry)))
                    if error == CANCELLED_ERROR or error.strip().lower() == _CANCELLED:
                        cancelled += 1
                    continue
            self.add_by_model_rules(request_id, _as_dict(row), entry)
        self.last_id = last_id
        self.cancelled += cancelled
        if careful:
            self.cost += sum(_payload_cost(raw) for raw in payloads)

    def admit(self, request_id: str) -> bool:
        """Whether a row is written: not when it repeats the previous id (counted); out of order, counted."""
        last_id = self.last_id
        if last_id is not None and request_id <= last_id:
            if request_id == last_id:
                self.duplicates += 1
                return False
            self.out_of_order += 1
        self.last_id = request_id
        return True

    def add_by_model_rules(self, request_id: str, row: dict[str, Any], entry: MetadataEntry | None) -> None:
        # Rare shapes (error objects, a top-level error_message, odd payloads): the model's rules.
        try:
            parsed = BatchResult.model_validate(row)
        except pydantic.ValidationError:
            # Still one line, so that every id is accounted for; the raw row says what came.
            self.failed.append(FailedLine(request_id, f"unrecognised result: {row}", *_extras(entry)))
            self.unrecognised += 1
            return
        if parsed.succeeded:
            metadata = None
            if entry is not None and entry.metadata is not None:
                metadata = msgspec.Raw(_encode(metadata_value(entry.metadata)))
            kind = parsed.response_kind or ""
            self.succeeded.append(
                SucceededLine(request_id, kind, msgspec.Raw(_encode(parsed.response)), metadata)
            )
            self.cost += parsed.cost_in_usd_ticks
        else:
            self.failed.append(FailedLine(request_id, parsed.error or "", *_extras(entry)))
            self.cancelled += parsed.is_cancelled

    def done(self, responses: list[Any] | None = None) -> ResultPage:
        counts = self.counts
        counts.succeeded += len(self.succeeded)
        counts.failed += len(self.failed)
        counts.cancelled += self.cancelled
        counts.cost_ticks += self.cost
        counts.duplicates += self.duplicates
        counts.out_of_order += self.out_of_order
        counts.unrecognised += self.unrecognised
        counts.last_id = self.last_id
        return ResultPage(self.succeeded, self.failed, responses)


def _payload_cost(raw: msgspec.Raw) -> int:
    try:
        usage = _COST_DECODER.decode(raw).usage
    except (msgspec.ValidationError, msgspec.DecodeError):  # not an object: no cost
        return 0
    if usage is not None:
        ticks = usage.cost_in_usd_ticks
        if type(ticks) is int or type(ticks) is float:
            return int(ticks)
    return 0


def _no_entry(request_id: str) -> MetadataEntry | None:
    return None


def _odd_page(rows: list[Any], counts: RowCounts, find: Callable[[str], MetadataEntry | None]) -> ResultPage:
    """A page the fast decoder refused (a row of an unexpected shape): every row by the model's rules."""
    lines = _PageLines(counts)
    for row in rows:
        request_id = row.get("batch_request_id") if isinstance(row, dict) else None
        if not isinstance(request_id, str):
            raise XAIError(f"a result row has no batch_request_id: {str(row)[:200]}")
        if lines.admit(request_id):
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
