"""The input's own fields on the result rows: a metadata sidecar, sorted by request id, joined as results arrive.

An input item may carry a top-level ``"metadata"`` object beside its request; it is never sent to
xAI. To put it (and the request's kind) back on the result row, the requests' ids, kinds and
metadata are written to a *sidecar*: a folder of JSONL runs, each sorted by ``batch_request_id``::

    {"batch_request_id": "doc-17", "kind": "chat_get_completion", "metadata": {"customer": "acme"}}

Results come sorted by ``batch_request_id`` too, so the export merges the runs (a heap over one
line per run) and walks the merged stream alongside the results: memory holds one line per run,
never the whole sidecar, whatever the number of requests.

Where the sidecar lives:

- ``XAIBatchOperator`` builds it from its own input when it writes the results, in a local
  temporary folder: the input is read again by the same deterministic ids, so retries and
  resubmission rounds find the same metadata.
- The create/add/results pipeline: ``XAIAddRequestsOperator(metadata_path=...)`` writes
  ``<metadata_path>/<batch_id>/<task>-<n>.jsonl`` (one set of runs per add task, rewritten the same
  on a retry), and ``XAIBatchResultsOperator(metadata_path=...)`` reads every run under
  ``<metadata_path>/<batch_id>/``.

>>> entries = [MetadataEntry("b", "responses", b'{"n":2}'), MetadataEntry("a", "chat_get_completion", None)]
>>> lookup = MetadataLookup(iter(sorted(entries)))
>>> lookup.get("a").kind, lookup.get("b").metadata, lookup.get("c")
('chat_get_completion', b'{"n":2}', None)
"""

from __future__ import annotations

import heapq
import re
import uuid
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import msgspec

from airflow_provider_xai_batch.client.inputs import NativeRequest, request_metadata
from airflow_provider_xai_batch.logs import LogLike
from airflow_provider_xai_batch.results.staging import OutputFolder, StagedFile

# Entries held in memory before a sorted run is written: ~100 bytes each plus the metadata.
RUN_ROWS = 100_000
_RUN_NAME = re.compile(r"^[A-Za-z0-9_.-]+-\d{5}\.jsonl$")
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class MetadataEntry(NamedTuple):
    """One request's id, kind and metadata (compact JSON bytes, or ``None`` when it had none)."""

    batch_request_id: str
    kind: str | None
    metadata: bytes | None


class _Line(msgspec.Struct, gc=False, omit_defaults=True):
    batch_request_id: str
    kind: str | None = None
    metadata: msgspec.Raw | None = None


class _ReadLine(msgspec.Struct, gc=False):
    # msgspec reads a raw value only as a plain ``Raw`` field: an absent one defaults to ``null``.
    batch_request_id: str
    kind: str | None = None
    metadata: msgspec.Raw = msgspec.Raw(b"null")


_encode_lines = msgspec.json.Encoder().encode_lines
_LINE = msgspec.json.Decoder(_ReadLine)


def entry_of(request: NativeRequest) -> MetadataEntry:
    """The sidecar entry of a normalised request.

    >>> from airflow_provider_xai_batch.client.inputs import normalise_request
    >>> request = normalise_request({"custom_id": "q1", "metadata": {"lang": "de"},
    ...     "body": {"model": "m", "messages": ["Hi"]}}, source="requests", position=0)
    >>> entry_of(request)
    MetadataEntry(batch_request_id='q1', kind='chat_get_completion', metadata=b'{"lang":"de"}')
    """
    (kind,) = request["batch_request"]
    return MetadataEntry(request["batch_request_id"], kind, request_metadata(request))


def run_prefix(label: str) -> str:
    """A file-name-safe prefix for one writer's runs (e.g. a task id and map index).

    >>> run_prefix("add_requests[3]")
    'add_requests-3'
    """
    return _SAFE.sub("-", label).strip("-") or "requests"


def write_sidecar(
    folder: OutputFolder,
    requests: Iterable[NativeRequest],
    *,
    prefix: str = "requests",
    run_rows: int = RUN_ROWS,
) -> int:
    """Write the sidecar runs of ``requests`` under ``folder`` (``<prefix>-00000.jsonl``, ...); return the count.

    Each run is staged and moved into place whole; runs a previous writer with the same prefix
    left beyond this one's are removed, so writing the same input again gives the same files.
    """
    folder.fs.makedirs(folder.root, exist_ok=True)
    token = uuid.uuid4().hex[:12]
    buffer: list[MetadataEntry] = []
    runs = 0
    count = 0

    def spill() -> None:
        nonlocal runs
        buffer.sort()
        staged = StagedFile(folder, f"{prefix}-{runs:05d}.jsonl", token)
        try:
            staged.write(
                _encode_lines(
                    [
                        _Line(
                            item.batch_request_id,
                            item.kind,
                            msgspec.Raw(item.metadata) if item.metadata else None,
                        )
                        for item in buffer
                    ]
                )
            )
            staged.publish()
        except BaseException:
            staged.discard()
            raise
        runs += 1
        buffer.clear()

    for request in requests:
        buffer.append(entry_of(request))
        count += 1
        if len(buffer) >= run_rows:
            spill()
    if buffer or runs == 0:
        spill()
    own_run = re.compile(re.escape(prefix) + r"-(\d{5})\.jsonl")
    for name in _run_names(folder):
        match = own_run.fullmatch(name)
        if match is not None and int(match.group(1)) >= runs:
            folder.remove(name)
    return count


def _run_names(folder: OutputFolder) -> list[str]:
    folder.fs.invalidate_cache(folder.root)
    try:
        entries = folder.fs.ls(folder.root, detail=False)
    except FileNotFoundError:
        return []
    names = (str(entry).rstrip("/").rsplit("/", 1)[-1] for entry in entries)
    return sorted(name for name in names if _RUN_NAME.match(name))


def _read_run(folder: OutputFolder, name: str) -> Iterator[MetadataEntry]:
    with folder.fs.open(folder.path(name), "rb") as handle:
        for line in handle:
            if line.strip():
                item = _LINE.decode(line)
                raw = bytes(item.metadata)
                yield MetadataEntry(item.batch_request_id, item.kind, None if raw == b"null" else raw)


def read_sidecar(folder: OutputFolder, log: LogLike | None = None) -> Iterator[MetadataEntry]:
    """Every entry under ``folder``, merged into one stream sorted by ``batch_request_id``.

    A folder that does not exist holds no entries.
    """
    names = _run_names(folder)
    if log is not None:
        log.info("reading request metadata from %d sidecar file(s) under %s", len(names), folder.uri())
    return heapq.merge(*(_read_run(folder, name) for name in names))


class MetadataLookup:
    """Finds the entry of each result, given results and entries both sorted by ``batch_request_id``.

    Only moves forward; an id asked for out of order (results the service did not sort) finds
    nothing, and is counted in ``missed``.
    """

    def __init__(self, entries: Iterator[MetadataEntry]) -> None:
        self._entries = entries
        self._current: MetadataEntry | None = next(entries, None)
        self._last: str | None = None
        self.missed = 0

    def get(self, request_id: str) -> MetadataEntry | None:
        if self._last is not None and request_id < self._last:
            self.missed += 1
            return None
        self._last = request_id
        current = self._current
        while current is not None and current.batch_request_id < request_id:
            current = next(self._entries, None)
        self._current = current
        if current is not None and current.batch_request_id == request_id:
            return current
        return None


def metadata_value(raw: bytes | None) -> Any:
    """The metadata as a Python value, for rows built as dicts (``None`` stays ``None``)."""
    return None if raw is None else msgspec.json.decode(raw)
