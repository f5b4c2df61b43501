"""Stream a batch's results to object storage: ``succeeded.jsonl``, ``failed.jsonl``, then ``manifest.json``.

Every file is written under a hidden staging name in the destination folder and moved into place
only once complete, data files first and the manifest last, so a reader that waits for
``manifest.json`` always sees a finished, consistent export. Pages are written as they arrive, so
memory stays flat whatever the size of the batch.

>>> from airflow_provider_xai_batch.client import XAIBatchClient
>>> with XAIBatchClient("xai-key", base_url="http://127.0.0.1:8787") as client:  # doctest: +SKIP
...     manifest = export_results(client, "batch_123", "s3://bucket/evals/nightly", output_conn_id="aws")
>>> manifest["succeeded"], manifest["failed"], manifest["files"]["failed"]  # doctest: +SKIP
(49012, 988, 's3://bucket/evals/nightly/failed.jsonl')
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

import msgspec
import pydantic
from airflow.sdk import ObjectStoragePath
from fsspec.implementations.local import LocalFileSystem

from airflow_provider_xai_batch.client import Batch, BatchResult, XAIBatchClient, XAIError, protocol
from airflow_provider_xai_batch.client.models import CANCELLED_ERROR
from airflow_provider_xai_batch.client.prefetch import Prefetcher

SUCCEEDED_FILE = "succeeded.jsonl"
FAILED_FILE = "failed.jsonl"
MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1

# Staging names: hidden, in the destination folder (so the final move stays within one store),
# and recognisable, so a later run can delete what a crashed one left behind.
_STAGING_NAME = re.compile(r"^\.(succeeded\.jsonl|failed\.jsonl|manifest\.json)\.[0-9a-f]{12}\.tmp$")
# Big enough for S3 multipart parts (5 MiB minimum), far below s3fs' 50 MiB default per open file.
_WRITE_BLOCK_BYTES = 8 * 1024 * 1024
_PROGRESS_EVERY_PAGES = 100


# Compact UTF-8 JSON lines straight to bytes, a page at a time; msgspec (which Airflow's task SDK
# requires) does it several times faster than ``json``, and this is the hot loop of an export.
_encode_lines = msgspec.json.Encoder().encode_lines
_CANCELLED = CANCELLED_ERROR.lower()

_log = logging.getLogger(__name__)


class LoggerLike(Protocol):
    """What the writer logs through: a ``logging.Logger``, or an operator's ``self.log``."""

    def info(self, msg: str, /, *args: Any) -> Any: ...

    def warning(self, msg: str, /, *args: Any) -> Any: ...


class BatchNotFinishedError(XAIError):
    """The batch is still running (or empty), and a complete export was asked for.

    >>> from airflow_provider_xai_batch.client import Batch
    >>> batch = Batch(batch_id="batch_1", state={"num_requests": 10, "num_pending": 4})
    >>> BatchNotFinishedError(batch).status
    'processing'
    """

    def __init__(self, batch: Batch) -> None:
        self.batch_id = batch.batch_id
        self.status = batch.status.value
        state = batch.state
        super().__init__(
            f"batch {batch.batch_id} is {self.status} ({state.num_pending} of {state.num_requests} "
            "requests pending): wait until it finishes (XAIBatchSensor), or pass allow_partial=True "
            "to export the results that exist so far"
        )


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


# -- rows ------------------------------------------------------------------------------------------
# A page is decoded into structs the garbage collector does not track, with each response payload
# left as raw JSON: a few objects per row instead of dozens, and the payload is copied into its line
# as it stands. Lines are built as structs too and encoded a page at a time. Together that is most
# of what exporting a big batch costs, beyond downloading it.


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


class _SucceededLine(msgspec.Struct, gc=False):
    batch_request_id: str
    kind: str
    response: msgspec.Raw


class _FailedLine(msgspec.Struct, gc=False):
    batch_request_id: str
    error: str


_PAGE_DECODER = msgspec.json.Decoder(_Page)
_COST_DECODER = msgspec.json.Decoder(_Costed)
_OPEN_BRACE = ord("{")


def encode_page_body(body: bytes, counts: RowCounts) -> tuple[bytes, bytes]:
    """One page of results, as the service sent it, as ``succeeded.jsonl`` and ``failed.jsonl`` lines.

    The usual shapes (an object payload under one kind; a plain-string error) take a fast path;
    anything else follows :class:`~airflow_provider_xai_batch.client.BatchResult`, which tolerates
    every known variant. A row repeating the previous id (a page boundary served twice) is skipped
    and counted; ``counts`` carries that across pages.

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
    try:
        if _looks_spaced(body):
            # Payloads are copied into their lines as they stand, so a page that is not compact is
            # compacted first: one line per row, and the same bytes however xAI spaced its JSON.
            body = msgspec.json.format(body, indent=-1)
        rows = _PAGE_DECODER.decode(body).results or []
    except (msgspec.DecodeError, msgspec.ValidationError):
        return _encode_odd_page(_generic_rows(body), counts)
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
        result = row.batch_result
        if result is not None and row.error_message is None:
            response = result.response
            error = result.error
            if error is None and response is not None and len(response) == 1:
                ((kind, raw),) = response.items()
                if memoryview(raw)[0] == _OPEN_BRACE:
                    succeeded.append(_SucceededLine(request_id, kind, raw))
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
                failed.append(_FailedLine(request_id, error))
                if error == CANCELLED_ERROR or error.strip().lower() == _CANCELLED:
                    cancelled += 1
                continue
        lines.add_by_model_rules(request_id, _as_dict(row))
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

    def add_by_model_rules(self, request_id: str, row: dict[str, Any]) -> None:
        # Rare shapes (error objects, a top-level error_message, odd payloads): the model's rules.
        try:
            parsed = BatchResult.model_validate(row)
        except pydantic.ValidationError:
            # Still one line, so that every id is accounted for; the raw row says what came.
            self.failed.append(_FailedLine(request_id, f"unrecognised result: {row}"))
            self.counts.unrecognised += 1
            return
        if parsed.succeeded:
            self.succeeded.append(
                {"batch_request_id": request_id, "kind": parsed.response_kind, "response": parsed.response}
            )
            self.cost += parsed.cost_in_usd_ticks
        else:
            self.failed.append(_FailedLine(request_id, parsed.error or ""))
            self.cancelled += parsed.is_cancelled

    def done(self) -> tuple[bytes, bytes]:
        counts = self.counts
        counts.succeeded += len(self.succeeded)
        counts.failed += len(self.failed)
        counts.cancelled += self.cancelled
        counts.cost_ticks += self.cost
        return _encode_lines(self.succeeded), _encode_lines(self.failed)


def _encode_odd_page(rows: list[Any], counts: RowCounts) -> tuple[bytes, bytes]:
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
        lines.add_by_model_rules(request_id, row)
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


def resolve_output_folder(
    output_path: ObjectStoragePath | str | os.PathLike[str], conn_id: str | None = None
) -> ObjectStoragePath:
    """The destination folder as an ``ObjectStoragePath``; a plain local path becomes ``file://``.

    >>> resolve_output_folder("/tmp/out").protocol
    'file'
    """
    if isinstance(output_path, ObjectStoragePath):
        return output_path
    text = os.fspath(output_path)
    if "://" not in text:
        text = "file://" + os.path.abspath(os.path.expanduser(text))
    return ObjectStoragePath(text, conn_id=conn_id)


def uri_of(path: ObjectStoragePath) -> str:
    """A plain URI for the manifest (``s3://bucket/key``): no connection id, same on every run."""
    return f"{path.protocol or 'file'}://{path.path}"


def _filesystem(folder: ObjectStoragePath) -> Any:
    # A local folder needs no connection; skipping Airflow's filesystem discovery saves a second.
    # Airflow 3.0 keeps the connection id in storage_options, later versions in an attribute.
    conn_id = getattr(folder, "conn_id", None) or folder.storage_options.get("conn_id")
    if folder.protocol in ("", "file", "local") and not conn_id:
        return LocalFileSystem()
    return folder.fs


def _move(fs: Any, source: str, target: str) -> None:
    # Locally a rename (atomic, replaces the target); on S3 a copy then delete, and the copy lands
    # as a whole object. Either way the final name never shows a partial file.
    fs.mv(source, target)


class _Folder:
    """The destination folder: one filesystem, paths inside it, and their URIs."""

    def __init__(self, folder: ObjectStoragePath) -> None:
        self.fs = _filesystem(folder)
        self.root = folder.path.rstrip("/")
        self.scheme = folder.protocol or "file"

    def path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def uri(self, name: str | None = None) -> str:
        return f"{self.scheme}://{self.root if name is None else self.path(name)}"

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self.path(name))

    def remove_stale_staging(self, log: LoggerLike) -> None:
        self.fs.invalidate_cache(self.root)
        try:
            entries = self.fs.ls(self.root, detail=False)
        except FileNotFoundError:
            return
        for entry in entries:
            name = str(entry).rstrip("/").rsplit("/", 1)[-1]
            if _STAGING_NAME.match(name):
                log.info("removing %s, left by an export that did not finish", name)
                self.remove(name)


def _sync_to_disk(handle: Any) -> None:
    # On a local disk the rename is atomic, but only data already on disk survives a machine
    # crash: without this, a power cut could leave a complete name over empty content.
    try:
        handle.flush()
        os.fsync(handle.fileno())
    except (AttributeError, OSError, ValueError):  # object stores: nothing to sync (io errors are OSError)
        pass


class _StagedFile:
    """A file written under a hidden staging name, then moved to its final name when complete."""

    def __init__(self, folder: _Folder, name: str, token: str) -> None:
        self.folder = folder
        self.name = name
        self.staging_name = f".{name}.{token}.tmp"
        self.size = 0
        self._handle: Any = folder.fs.open(
            folder.path(self.staging_name), "wb", block_size=_WRITE_BLOCK_BYTES
        )
        self._published = False

    @property
    def uri(self) -> str:
        return self.folder.uri(self.name)

    def write(self, data: bytes) -> None:
        if data:
            self._handle.write(data)
            self.size += len(data)

    def close(self) -> None:
        if self._handle is not None:
            _sync_to_disk(self._handle)
            self._handle.close()
            self._handle = None

    def publish(self) -> None:
        self.close()
        _move(self.folder.fs, self.folder.path(self.staging_name), self.folder.path(self.name))
        self._published = True

    def discard(self) -> None:
        """Drop everything written (an unfinished multipart upload is aborted, not committed)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            abort = getattr(handle, "discard", None)
            try:
                if callable(abort):
                    abort()
                handle.close()
            except Exception:  # cleaning up after a failure must not hide that failure
                _log.debug("closing %s after a failure", self.staging_name, exc_info=True)
        if not self._published:
            try:
                self.folder.remove(self.staging_name)
            except Exception:
                _log.debug("removing %s after a failure", self.staging_name, exc_info=True)


def _counters(batch: Batch) -> dict[str, int]:
    state = batch.state
    failed = state.num_error + state.num_cancelled
    return {
        "total": state.num_success + failed,
        "succeeded": state.num_success,
        "failed": failed,
        "cancelled": state.num_cancelled,
        "pending": state.num_pending,
    }


def reconcile(
    counts: RowCounts, before: Batch, after: Batch, *, partial: bool
) -> tuple[bool, dict[str, int], list[str]]:
    """Compare rows written with the batch's counters: ``(reconciled, expected, notes)``.

    Complete exports must match the counters read after the last page. A partial export raced the
    processing, so it only has to lie between the counters read before and after it.
    """
    written = {"total": counts.total, "succeeded": counts.succeeded, "failed": counts.failed}
    written["cancelled"] = counts.cancelled
    first, last = _counters(before), _counters(after)
    notes: list[str] = []
    keys = ("succeeded", "failed", "cancelled")
    if partial:
        reconciled = all(min(first[k], last[k]) <= written[k] <= max(first[k], last[k]) for k in keys)
    else:
        reconciled = all(written[k] == last[k] for k in keys)
    if not reconciled:
        for key in keys:
            if written[key] != last[key]:
                gap = last[key] - written[key]
                what = "missing" if gap > 0 else "more than counted"
                notes.append(
                    f"{key}: the batch counts {last[key]}, {written[key]} written ({abs(gap)} {what})"
                )
        if first != last:
            notes.append(
                "the batch's counters changed while exporting (work in flight at cancel time can still "
                "land); export again once they settle"
            )
    if counts.duplicates:
        notes.append(f"{counts.duplicates} result rows were served twice and written once")
    if counts.unrecognised:
        notes.append(f"{counts.unrecognised} result rows had an unrecognised shape (written to failed.jsonl)")
    if counts.out_of_order:
        notes.append(f"{counts.out_of_order} result rows came out of batch_request_id order")
    if partial:
        notes.append(
            f"partial export: the batch was {before.status.value} with {first['pending']} requests pending; "
            "export again once it finishes"
        )
    elif last["pending"]:
        notes.append(f"{last['pending']} requests never finished (batch {after.status.value})")
    if after.cancel_by_xai_message:
        notes.append(f"xAI stopped the batch: {after.cancel_by_xai_message}")
    return reconciled, last, notes


def build_manifest(
    batch: Batch,
    counts: RowCounts,
    files: Mapping[str, _StagedFile],
    *,
    partial: bool,
    reconciled: bool,
    expected: dict[str, int],
    notes: list[str],
) -> dict[str, Any]:
    """The manifest: the contract's keys first, then what helps a reader trust the export."""
    return {
        "batch_id": batch.batch_id,
        "total": counts.total,
        "succeeded": counts.succeeded,
        "failed": counts.failed,
        "cancelled": counts.cancelled,
        "cost_usd_ticks": counts.cost_ticks,
        "files": {key: staged.uri for key, staged in files.items()},
        "name": batch.name,
        "status": batch.status.value,
        "partial": partial,
        "reconciled": reconciled,
        "expected": expected,
        "notes": notes,
        "file_details": {
            "succeeded": {"rows": counts.succeeded, "bytes": files["succeeded"].size},
            "failed": {"rows": counts.failed, "bytes": files["failed"].size},
        },
        "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "format_version": MANIFEST_VERSION,
    }


def export_results(
    client: XAIBatchClient,
    batch_id: str,
    output_path: ObjectStoragePath | str,
    *,
    output_conn_id: str | None = None,
    allow_partial: bool = False,
    page_size: int = 1000,
    log: logging.Logger | LoggerLike | None = None,
) -> dict[str, Any]:
    """Write every result of a batch under the folder ``output_path``; return the manifest.

    ``output_path`` is any ``ObjectStoragePath`` URI (``s3://bucket/prefix``, ``file:///data/out``)
    or a plain local path; ``output_conn_id`` is the Airflow connection to reach it. The folder gets
    ``succeeded.jsonl``, ``failed.jsonl`` (cancelled requests included) and, last,
    ``manifest.json``. A batch still running is refused with :class:`BatchNotFinishedError`
    unless ``allow_partial`` is set, in which case the results so far are written and the manifest
    says ``"partial": true``. Running again rewrites byte-identical data files.

    >>> manifest = export_results(client, "batch_123", "/data/results/batch_123")  # doctest: +SKIP
    >>> manifest["total"] == manifest["succeeded"] + manifest["failed"]  # doctest: +SKIP
    True
    """
    logger: LoggerLike = log if log is not None else _log
    folder = _Folder(resolve_output_folder(output_path, output_conn_id))
    before = client.get_batch(batch_id)
    status = before.status
    if not status.is_terminal and not allow_partial:
        raise BatchNotFinishedError(before)
    partial = not status.is_terminal
    if partial:
        logger.warning("batch %s is %s: exporting the results that exist so far", batch_id, status.value)

    folder.fs.makedirs(folder.root, exist_ok=True)
    folder.remove_stale_staging(logger)
    token = uuid.uuid4().hex[:12]
    staged: list[_StagedFile] = []
    try:
        succeeded = _StagedFile(folder, SUCCEEDED_FILE, token)
        staged.append(succeeded)
        failed = _StagedFile(folder, FAILED_FILE, token)
        staged.append(failed)
        counts = RowCounts()
        # The next page downloads while this one is encoded and written; memory stays a few pages.
        with Prefetcher(client.iter_result_page_bodies(batch_id, page_size=page_size)) as pages:
            for number, body in enumerate(pages, start=1):
                succeeded_lines, failed_lines = encode_page_body(body, counts)
                succeeded.write(succeeded_lines)
                failed.write(failed_lines)
                if number % _PROGRESS_EVERY_PAGES == 0:
                    logger.info("batch %s: %d results written so far", batch_id, counts.total)
        succeeded.close()
        failed.close()

        after = client.get_batch(batch_id)
        reconciled, expected, notes = reconcile(counts, before, after, partial=partial)
        manifest = build_manifest(
            after,
            counts,
            {"succeeded": succeeded, "failed": failed},
            partial=partial,
            reconciled=reconciled,
            expected=expected,
            notes=notes,
        )
        manifest_file = _StagedFile(folder, MANIFEST_FILE, token)
        staged.append(manifest_file)
        manifest_file.write((json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode())
        manifest_file.close()

        # The old manifest goes first: from here until the new one lands, no manifest vouches for
        # a mix of old and new data files.
        folder.remove(MANIFEST_FILE)
        succeeded.publish()
        failed.publish()
        manifest_file.publish()
    except BaseException:
        for item in staged:
            item.discard()
        raise

    if not reconciled:
        logger.warning(
            "batch %s: the results written do not match the batch's counters: %s",
            batch_id,
            "; ".join(notes),
        )
    logger.info(
        "batch %s: %d succeeded, %d failed (%d cancelled) written to %s",
        batch_id,
        counts.succeeded,
        counts.failed,
        counts.cancelled,
        folder.uri(),
    )
    return manifest
