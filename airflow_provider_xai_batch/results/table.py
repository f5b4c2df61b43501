"""Results as Parquet tables: ``succeeded.parquet`` and ``failed.parquet`` (``output_format="parquet"``).

The export builds the same rows either way; here each line of a page becomes a table row,
with the fields a warehouse or dataframe wants dug out of xAI's nested response (answer text,
finish reason, tokens, cost, media URIs) and the raw response kept beside them as JSON text.
Rows are buffered up to one row group and written as it fills, so memory stays flat however big
the batch is. pyarrow is optional: the ``[parquet]`` extra installs it.

>>> require_output_format("jsonl")
>>> sorted(SUCCEEDED_COLUMNS)[:3]
['attempts', 'batch_request_id', 'completion_tokens']
"""

from __future__ import annotations

import array
import concurrent.futures
import importlib
import itertools
import operator
from typing import TYPE_CHECKING, Any, cast

import msgspec
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_xai_batch.results.manifest import OUTPUT_FORMATS
from airflow_provider_xai_batch.results.staging import StagedFile

if TYPE_CHECKING:
    from airflow_provider_xai_batch.results.rows import ResultPage

PARQUET_EXTRA = "airflow-provider-xai-batch[parquet]"
# Rows per row group: big enough for good compression and fast scans, small enough that a
# buffered group (raw responses included) stays a few tens of megabytes.
ROW_GROUP_ROWS = 20_000
# What pyarrow gathers in native memory before handing it to the staged file (see ParquetSink).
SINK_BUFFER_BYTES = 1 << 20

SUCCEEDED_COLUMNS = (
    "batch_request_id",
    "kind",
    "model",
    "text",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cost_usd_ticks",
    "media_uris",
    "metadata",
    "response",
    "attempts",
)
FAILED_COLUMNS = ("batch_request_id", "kind", "error", "metadata", "attempts")


class ParquetUnavailableError(AirflowFailException):
    """``output_format="parquet"`` was asked for where pyarrow is not installed; no retry fixes that."""


def require_output_format(output_format: str) -> None:
    """Refuse an unknown format, or Parquet without pyarrow, before any work is done.

    >>> require_output_format("csv")
    Traceback (most recent call last):
    ...
    ValueError: output_format must be one of jsonl, parquet, not 'csv'
    """
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"output_format must be one of {', '.join(OUTPUT_FORMATS)}, not {output_format!r}")
    if output_format == "parquet":
        _pyarrow()


def _pyarrow() -> tuple[Any, Any]:
    try:
        return importlib.import_module("pyarrow"), importlib.import_module("pyarrow.parquet")
    except ImportError as error:
        raise ParquetUnavailableError(
            f'output_format="parquet" needs pyarrow, which is not installed here ({error}); '
            f"install {PARQUET_EXTRA} on the workers (or use output_format='jsonl')"
        ) from None


# The fields of a result line and of xAI's responses that become columns; everything else stays in
# the raw ``response`` column. Loose types, so a surprising value becomes null rather than an error.
class _Details(msgspec.Struct, gc=False):
    reasoning_tokens: Any = None


class _Usage(msgspec.Struct, gc=False):
    prompt_tokens: Any = None
    completion_tokens: Any = None
    input_tokens: Any = None
    output_tokens: Any = None
    cost_in_usd_ticks: Any = None
    completion_tokens_details: _Details | None = None
    output_tokens_details: _Details | None = None


class _Message(msgspec.Struct, gc=False):
    content: Any = None


class _Choice(msgspec.Struct, gc=False):
    message: _Message | None = None
    finish_reason: Any = None


class _Link(msgspec.Struct, gc=False):
    url: Any = None


class _Content(msgspec.Struct, gc=False):
    text: Any = None


class _OutputItem(msgspec.Struct, gc=False):
    content: list[_Content] | None = None


class _Response(msgspec.Struct, gc=False):
    model: Any = None
    choices: list[_Choice] | None = None
    usage: _Usage | None = None
    data: list[_Link] | None = None
    video: _Link | None = None
    output: list[_OutputItem] | None = None
    status: Any = None


class _Media(msgspec.Struct, gc=False):
    uri: Any = None


# msgspec reads a raw value only as a plain ``Raw`` field: an absent one defaults to ``null``.
_RAW_NULL = msgspec.Raw(b"null")


class _SucceededLine(msgspec.Struct, gc=False):
    batch_request_id: str
    kind: Any = None
    response: msgspec.Raw = _RAW_NULL
    metadata: msgspec.Raw = _RAW_NULL
    media: list[_Media] | None = None
    attempts: Any = None


class _FailedLine(msgspec.Struct, gc=False):
    batch_request_id: str
    error: Any = None
    kind: Any = None
    metadata: msgspec.Raw = _RAW_NULL
    attempts: Any = None


# The fast path: every field of the usual shapes, strictly typed, read for a whole page in one call.
# A page where any value has another type (a list as message content, say) takes the loose path.
class _StrictDetails(msgspec.Struct, gc=False):
    reasoning_tokens: int | None = None


class _StrictUsage(msgspec.Struct, gc=False):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_in_usd_ticks: int | None = None
    completion_tokens_details: _StrictDetails | None = None
    # The Responses API's names: rows that use them go the loose way, which reads both.
    input_tokens: None = None
    output_tokens: None = None
    output_tokens_details: None = None


class _StrictMessage(msgspec.Struct, gc=False):
    content: str | None = None


class _StrictChoice(msgspec.Struct, gc=False):
    message: _StrictMessage | None = None
    finish_reason: str | None = None


class _StrictResponse(msgspec.Struct, gc=False):
    model: str | None = None
    # A tuple, not a list: the garbage collector stops tracking a tuple of untracked structs at its
    # first pass, so a page's responses do not pile up towards a full collection of the heap.
    choices: tuple[_StrictChoice, ...] | None = None
    usage: _StrictUsage | None = None
    # Anything that carries media or the Responses API's shape goes the loose way.
    data: None = None
    video: None = None
    output: None = None


class _StrictLine(msgspec.Struct, gc=False):
    response: _StrictResponse
    kind: str | None = None
    attempts: int | None = None
    media: None = None


_SUCCEEDED_LINES = msgspec.json.Decoder(list[_SucceededLine])
_STRICT_LINES = msgspec.json.Decoder(list[_StrictLine])
_STRICT_RESPONSES = msgspec.json.Decoder(list[_StrictResponse])
_FAILED_LINES = msgspec.json.Decoder(list[_FailedLine])
_RESPONSE = msgspec.json.Decoder(_Response)
_NO_USAGE = _StrictUsage()
_NULL = b"null"
_model = operator.attrgetter("model")
_prompt_tokens = operator.attrgetter("prompt_tokens")
_completion_tokens = operator.attrgetter("completion_tokens")
_cost = operator.attrgetter("cost_in_usd_ticks")
_finish_reason = operator.attrgetter("finish_reason")
_request_id = operator.attrgetter("batch_request_id")
_raw_response = operator.attrgetter("response")
_metadata = operator.attrgetter("metadata")


def read_usual_responses(payloads: bytes) -> tuple[list[Any], int]:
    """A page's payloads (one JSON array) read for the table's columns, when all are of the usual shapes.

    The :data:`~.rows.PayloadReader` of a Parquet export: :func:`~.rows.decode_page` hands it the
    payloads it decoded the page into, and it reads the columns and the costs in the same call.
    Raises ``msgspec.ValidationError`` when any payload has another shape (the page then goes the
    row-by-row way).

    >>> responses, cost = read_usual_responses(b'[{"model": "grok-4.3", "usage": {"cost_in_usd_ticks": 7}}]')
    >>> responses[0].model, cost
    ('grok-4.3', 7)
    """
    responses = _STRICT_RESPONSES.decode(payloads)
    costs = [usage.cost_in_usd_ticks for response in responses if (usage := response.usage) is not None]
    return responses, sum(filter(None, costs))


def _int(value: Any) -> int | None:
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _json_bytes(raw: msgspec.Raw | None) -> bytes | None:
    # JSON text stays UTF-8 bytes: pyarrow takes them for a string column without decoding in Python.
    if raw is None:
        return None
    data = bytes(raw)
    return None if data == _NULL else data


def _as_list(lines: bytes) -> bytes:
    # A page's lines as one JSON array, so that one decoder call reads them all.
    return b"[" + lines.rstrip(b"\n").replace(b"\n", b",") + b"]"


def response_columns(raw: bytes) -> dict[str, Any]:
    """The columns dug out of one raw response payload (the value under its kind key).

    >>> response_columns(b'{"model": "grok-4.3", "choices": [{"message": {"content": "Hi"}, "finish_reason": "stop"}],'
    ...                  b' "usage": {"prompt_tokens": 5, "completion_tokens": 1, "cost_in_usd_ticks": 9}}')["text"]
    'Hi'
    """
    try:
        response = _RESPONSE.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        response = _Response()
    text = finish_reason = None
    if response.choices:
        first = response.choices[0]
        finish_reason = _str(first.finish_reason)
        if first.message is not None:
            text = _str(first.message.content)
    elif response.output:  # the Responses API's own shape
        parts = [
            part.text for item in response.output for part in item.content or () if isinstance(part.text, str)
        ]
        text = "".join(parts) if parts else None
        finish_reason = _str(response.status)
    usage = response.usage or _Usage()
    details = usage.completion_tokens_details or usage.output_tokens_details
    urls = [link.url for link in response.data or () if isinstance(link.url, str)]
    if response.video is not None and isinstance(response.video.url, str):
        urls.append(response.video.url)
    return {
        "model": _str(response.model),
        "text": text,
        "finish_reason": finish_reason,
        "prompt_tokens": _int(usage.prompt_tokens if usage.prompt_tokens is not None else usage.input_tokens),
        "completion_tokens": _int(
            usage.completion_tokens if usage.completion_tokens is not None else usage.output_tokens
        ),
        "reasoning_tokens": _int(details.reasoning_tokens) if details is not None else None,
        "cost_usd_ticks": _int(usage.cost_in_usd_ticks),
        "media_uris": urls,
    }


class ParquetSink:
    """One Parquet file, staged like the JSONL files, filled a page at a time (decoded, or as JSONL lines).

    >>> sink = ParquetSink(staged, "succeeded")  # doctest: +SKIP
    >>> sink.write(b'{"batch_request_id":"a","kind":"chat_get_completion","response":{}}\\n')  # doctest: +SKIP
    >>> sink.close()  # doctest: +SKIP
    """

    def __init__(self, staged: StagedFile, which: str, *, row_group_rows: int = ROW_GROUP_ROWS) -> None:
        pa, pq = _pyarrow()
        self._pa = pa
        self.staged = staged
        self._succeeded = which == "succeeded"
        self._columns = SUCCEEDED_COLUMNS if self._succeeded else FAILED_COLUMNS
        self._schema = _schema(pa, self._succeeded)
        self._row_group_rows = row_group_rows
        # Each page becomes an Arrow record batch at once: a row group's worth of Python objects
        # would cost memory and garbage-collector passes over them; Arrow's buffers cost neither.
        self._batches: list[Any] = []
        self._rows = 0
        # Row groups are encoded, compressed and written on a thread of their own: pyarrow does it
        # without the GIL, so it overlaps with decoding the next pages instead of stopping them.
        # One row group at a time, in order: the next waits for the one before it.
        self._writing = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="xai-parquet")
        self._written: concurrent.futures.Future[None] | None = None
        # pyarrow encodes and compresses without the GIL, but writes its output in many small
        # pieces (a hundred or so per row group); straight to a Python file object, each piece
        # waited for the GIL whenever the fetch thread held it, and writing row groups took 1.6
        # times as long in an export as alone. A native buffer hands them over a MB at a time.
        self._target = _StagedStream(staged)
        self._stream = pa.BufferedOutputStream(
            pa.PythonFile(self._target, mode="w"), buffer_size=SINK_BUFFER_BYTES
        )
        # Dictionary encoding only where values repeat: ids, texts and raw responses are nearly all
        # distinct, and trying a dictionary for them costs time for nothing.
        self._writer = pq.ParquetWriter(
            self._stream,
            self._schema,
            # zstd's fastest level: result tables (repetitive JSON) come out the same size as at
            # the default level, for a tenth less of the export's time spent compressing.
            compression="zstd",
            compression_level=1,
            use_dictionary=["kind", "model", "finish_reason", "error"],
            write_statistics=["batch_request_id", "kind", "model", "cost_usd_ticks", "attempts"],
        )

    def write(self, lines: bytes) -> None:
        """Add a page given as JSONL lines (a resubmission export's, or lines the media step rewrote)."""
        if not lines:
            return
        if self._succeeded:
            page = _as_list(lines)
            rows = _SUCCEEDED_LINES.decode(page)
            try:
                strict = _STRICT_LINES.decode(page)
            except msgspec.ValidationError:
                self._add(self._succeeded_batch(rows))
            else:
                responses = [line.response for line in strict]
                kinds = [line.kind for line in strict]
                self._add(self._usual_batch(rows, kinds, responses, [line.attempts for line in strict]))
        else:
            self._add(self._failed_batch(_FAILED_LINES.decode(_as_list(lines))))

    def write_page(self, page: ResultPage) -> None:
        """Add a page as :func:`~.rows.decode_page` decoded it, with :func:`read_usual_responses` as its reader.

        Nothing is decoded again: the lines are structs already, and a page of the usual shapes
        comes with its payloads read for the columns. Any other page is read from its lines.
        """
        if not self._succeeded:
            if page.failed:
                self._add(self._failed_batch(page.failed))
        elif page.responses is None:
            self.write(page.succeeded_lines())
        elif page.succeeded:
            kinds = [line.kind for line in page.succeeded]
            self._add(self._usual_batch(page.succeeded, kinds, page.responses, None))

    def _add(self, batch: Any) -> None:
        self._batches.append(batch)
        self._rows += batch.num_rows
        if self._rows >= self._row_group_rows:
            self._flush()

    def _usual_batch(
        self, rows: list[Any], kinds: list[Any], responses: list[_StrictResponse], attempts: list[Any] | None
    ) -> Any:
        """A page of the usual chat shapes: columns built a whole column at a time.

        ``rows`` are lines with an id, a raw response and raw metadata (as read back from JSONL, or
        as :mod:`.rows` built them); ``responses`` their payloads read strictly; ``attempts`` none
        when no line has any.
        """
        pa = self._pa
        string, int64 = pa.string(), pa.int64()
        count = len(rows)
        firsts = [response.choices[0] if response.choices else None for response in responses]
        usages = [response.usage or _NO_USAGE for response in responses]
        arrays = [
            pa.array(list(map(_request_id, rows)), string),
            pa.array(kinds, string),
            pa.array(list(map(_model, responses)), string),
            pa.array(
                [first.message.content if first is not None and first.message else None for first in firsts],
                string,
            ),
            pa.array([first.finish_reason if first else None for first in firsts], string),
            pa.array(list(map(_prompt_tokens, usages)), int64),
            pa.array(list(map(_completion_tokens, usages)), int64),
            pa.array(
                [
                    usage.completion_tokens_details.reasoning_tokens
                    if usage.completion_tokens_details
                    else None
                    for usage in usages
                ],
                int64,
            ),
            pa.array(list(map(_cost, usages)), int64),
            # No media on this path: every list is empty, which is all-zero offsets into no values.
            pa.Array.from_buffers(
                self._schema.field("media_uris").type,
                count,
                [None, pa.py_buffer(bytes(4 * (count + 1)))],
                children=[pa.array([], string)],
            ),
            # Metadata and responses are copied as the JSON text they are, joined into one buffer:
            # no Python string per row, and Arrow takes the buffer as it stands.
            _metadata_column(pa, list(map(_metadata, rows))),
            _json_text(pa, list(map(_raw_response, rows)), null_is_none=False),
            pa.nulls(count, int64) if attempts is None else pa.array(attempts, int64),
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=self._schema)

    def _succeeded_batch(self, rows: list[_SucceededLine]) -> Any:
        columns: dict[str, list[Any]] = {name: [] for name in self._columns}
        for row in rows:
            raw = bytes(row.response)
            dug = response_columns(raw)
            if row.media:  # stored copies, when the export downloaded the media
                dug["media_uris"] = [item.uri for item in row.media if isinstance(item.uri, str)]
            columns["batch_request_id"].append(row.batch_request_id)
            columns["kind"].append(_str(row.kind))
            for name in ("model", "text", "finish_reason", "prompt_tokens", "completion_tokens"):
                columns[name].append(dug[name])
            columns["reasoning_tokens"].append(dug["reasoning_tokens"])
            columns["cost_usd_ticks"].append(dug["cost_usd_ticks"])
            columns["media_uris"].append(dug["media_uris"])
            columns["metadata"].append(_json_bytes(row.metadata))
            columns["response"].append(raw)
            columns["attempts"].append(_int(row.attempts))
        return self._pa.RecordBatch.from_pydict(columns, schema=self._schema)

    def _failed_batch(self, rows: list[Any]) -> Any:
        # Lines read back from JSONL (loose types) or built by :mod:`.rows` (an error is a string).
        columns: dict[str, list[Any]] = {name: [] for name in self._columns}
        for row in rows:
            columns["batch_request_id"].append(row.batch_request_id)
            columns["kind"].append(_str(row.kind))
            columns["error"].append(row.error if isinstance(row.error, str) else str(row.error))
            columns["metadata"].append(_json_bytes(row.metadata))
            columns["attempts"].append(_int(row.attempts))
        return self._pa.RecordBatch.from_pydict(columns, schema=self._schema)

    def _flush(self) -> None:
        if not self._rows:
            return
        table = self._pa.Table.from_batches(self._batches, schema=self._schema)
        self._wait_for_writing()
        self._written = self._writing.submit(self._writer.write_table, table, row_group_size=self._rows)
        self._batches = []
        self._rows = 0

    def _wait_for_writing(self) -> None:
        """Wait for the row group being written; its error, if any, is raised here."""
        written, self._written = self._written, None
        if written is not None:
            written.result()

    def close(self) -> None:
        if self._writer is not None:
            self._flush()
            self._wait_for_writing()
            self._writer.close()
            self._writer = None
            # The footer and whatever is buffered reach the staged file before it is closed.
            self._stream.close()
            self._writing.shutdown()
        self.staged.close()

    def abandon(self) -> None:
        """Stop after a failure elsewhere: let a row group being written finish, write nothing more.

        The staged file is then discarded by its owner; nothing is left writing to it.
        """
        self._writing.shutdown(wait=True, cancel_futures=True)
        self._written = None
        # pyarrow closes a writer it collects, footer and all: that must not reach a discarded file.
        self._target.abandoned = True
        self._writer = None


def _metadata_column(pa: Any, metadata: list[msgspec.Raw | None]) -> Any:
    # Without any metadata in the input, every value is null (``None`` from :mod:`.rows`, the JSON
    # ``null`` read back from a line): one comparison for the page.
    count = len(metadata)
    if metadata.count(None) == count or (
        None not in metadata and b"".join(cast("list[msgspec.Raw]", metadata)) == _NULL * count
    ):
        return pa.nulls(count, pa.string())
    return _json_text(pa, metadata)


def _json_text(pa: Any, values: list[msgspec.Raw | None], *, null_is_none: bool = True) -> Any:
    """A string column of JSON texts, built from one joined buffer; ``None`` or a JSON ``null`` is a
    null value unless ``null_is_none`` is false (the raw response column keeps the text ``"null"``).

    >>> import pyarrow
    >>> _json_text(pyarrow, [msgspec.Raw(b'{"a":1}'), msgspec.Raw(b"null"), None]).to_pylist()
    ['{"a":1}', None, None]
    >>> _json_text(pyarrow, [msgspec.Raw(b"null")], null_is_none=False).to_pylist()
    ['null']
    """
    validity = None
    raws = cast("list[msgspec.Raw]", values)
    if null_is_none:
        nulls = [raw is None or (len(raw) == 4 and bytes(raw) == _NULL) for raw in values]
        if any(nulls):
            raws = [_EMPTY if null else raw for raw, null in zip(raws, nulls, strict=True)]
            validity = pa.array([not null for null in nulls], pa.bool_()).buffers()[1]
    # 32-bit offsets, as the ``string`` type has them: a page's texts are far below 2 GiB.
    offsets = array.array("i", [0])
    offsets.extend(itertools.accumulate(map(len, raws)))
    data = b"".join(raws)
    return pa.Array.from_buffers(
        pa.string(), len(raws), [validity, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


_EMPTY = msgspec.Raw(b"")


def _schema(pa: Any, succeeded: bool) -> Any:
    string, int64 = pa.string(), pa.int64()
    if succeeded:
        fields = [
            pa.field("batch_request_id", string, nullable=False),
            pa.field("kind", string),
            pa.field("model", string),
            pa.field("text", string),
            pa.field("finish_reason", string),
            pa.field("prompt_tokens", int64),
            pa.field("completion_tokens", int64),
            pa.field("reasoning_tokens", int64),
            pa.field("cost_usd_ticks", int64),
            pa.field("media_uris", pa.list_(string)),
            pa.field("metadata", string),
            pa.field("response", string),
            pa.field("attempts", int64),
        ]
    else:
        fields = [
            pa.field("batch_request_id", string, nullable=False),
            pa.field("kind", string),
            pa.field("error", string),
            pa.field("metadata", string),
            pa.field("attempts", int64),
        ]
    return pa.schema(fields)


class _StagedStream:
    """The write side of a staged file as the file object pyarrow writes to (it counts the size)."""

    closed = False
    #: Set once the export failed: what pyarrow still writes is dropped.
    abandoned = False

    def __init__(self, staged: StagedFile) -> None:
        self._staged = staged
        self._position = 0

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        if not self.abandoned:
            self._staged.write(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        return None

    def close(self) -> None:
        # The staged file is closed (synced, then published) by the export, not by pyarrow.
        self.closed = True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False
