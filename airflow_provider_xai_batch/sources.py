"""Where batch requests come from: an XCom list, or JSONL files in object storage.

Adding requests is done in two passes over the same input, so that nothing is sent unless
everything is valid, and memory never grows with the input:

1. :func:`validate` reads everything once and checks every request (shape, endpoint, body, id,
   size, ids reused for other content across all files), then returns an :class:`InputSummary`.
2. :func:`iter_native` streams the normalised native requests again, for sending.

>>> resolved = resolve_input(requests=[{"custom_id": "q1", "body": {
...     "model": "grok-4.3", "messages": [{"role": "user", "content": "Hi"}]}}])
>>> validate(resolved).unique
1
>>> [request["batch_request_id"] for request in iter_native(resolved)]
['q1']

Files are read one line at a time: ``source`` is one URI or a list of URIs, any scheme
``ObjectStoragePath`` knows (``file://``, ``s3://``, ``gs://`` ...; a plain local path too), globs
allowed (``*``, ``**``, ``?``), ``.jsonl`` or gzip-compressed ``.jsonl.gz``. A request without an
id gets a deterministic one from its file URI and line (or list label and index), so re-sending
the same input after a failure adds nothing twice.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Protocol

from airflow.sdk import ObjectStoragePath

from airflow_provider_xai_batch.client.errors import XAIInputError
from airflow_provider_xai_batch.client.inputs import (
    DEFAULT_MAX_REQUEST_BYTES,
    DuplicateIdChecker,
    NativeRequest,
    check_request_size,
    encode_request,
    iter_jsonl,
    normalise_request,
)

if TYPE_CHECKING:
    from airflow_provider_xai_batch.hooks.xai import XAIBatchHook

REQUESTS_LABEL = "requests"
GZIP_MAGIC = b"\x1f\x8b"
_GLOB_CHARACTERS = frozenset("*?[")


class LogLike(Protocol):
    """The part of a logger this module uses (a stdlib logger or an operator's ``self.log``)."""

    def info(self, msg: str, /, *args: Any) -> object: ...

    def warning(self, msg: str, /, *args: Any) -> object: ...


# -- naming and detection (pure) -------------------------------------------------------------------


def has_glob(uri: str) -> bool:
    """Whether a URI is a pattern (``*``, ``**``, ``?`` or ``[...]``) rather than one file.

    >>> has_glob("s3://bucket/in/*.jsonl"), has_glob("s3://bucket/in/part-1.jsonl")
    (True, False)
    """
    return any(character in _GLOB_CHARACTERS for character in uri)


def is_gzip(name: str, head: bytes) -> bool:
    """Whether a file is gzip-compressed: by its ``.gz`` suffix or by the gzip magic bytes.

    The magic bytes catch compressed files without the suffix; the suffix catches a ``.gz`` file
    whose content is not gzip, so that it is reported as corrupt rather than parsed as text.

    >>> is_gzip("part-1.jsonl.gz", b""), is_gzip("part-1.jsonl", b"\\x1f\\x8b"), is_gzip("a.jsonl", b"{")
    (True, True, False)
    """
    return name.lower().endswith(".gz") or head.startswith(GZIP_MAGIC)


def as_uri(location: str) -> str:
    """A URI for a user's location: plain local paths become absolute ``file://`` URIs.

    >>> as_uri("s3://bucket/in/*.jsonl"), as_uri("/data/in.jsonl")
    ('s3://bucket/in/*.jsonl', 'file:///data/in.jsonl')
    """
    if "://" in location:
        return location
    return "file://" + os.path.abspath(os.path.expanduser(location))


def xcom_source_label(context: Mapping[str, Any] | None) -> str:
    """The label of a request list from XCom: stable across retries, distinct per task and map index.

    The label names the list in error messages and seeds the ids of requests that have none, so two
    mapped task instances adding id-less lists to one batch never produce the same ids.

    >>> class TI:
    ...     task_id, map_index = "add_rows", 3
    >>> xcom_source_label({"ti": TI()}), xcom_source_label(None)
    ('add_rows[3].requests', 'requests')
    """
    ti = (context or {}).get("ti")
    task_id = getattr(ti, "task_id", None)
    if not task_id:
        return REQUESTS_LABEL
    map_index = getattr(ti, "map_index", -1)
    if isinstance(map_index, int) and map_index >= 0:
        return f"{task_id}[{map_index}].{REQUESTS_LABEL}"
    return f"{task_id}.{REQUESTS_LABEL}"


# -- resolving the input ---------------------------------------------------------------------------


@dataclass(frozen=True)
class InputFile:
    """One JSONL file to read: its URI (the label in messages and generated ids) and its path."""

    uri: str
    path: Any  # an ObjectStoragePath; typed loosely because Airflow ships no type information


@dataclass(frozen=True)
class ResolvedInput:
    """The input pinned down once, so both passes read exactly the same list or the same files.

    Globs are expanded when the input is resolved; a file appearing later is not picked up by the
    sending pass without having been validated.
    """

    requests: Sequence[Any] | None = None
    files: tuple[InputFile, ...] = ()
    label: str = REQUESTS_LABEL

    @property
    def sources(self) -> list[str]:
        """What is read, in order: the list label, or each file's URI."""
        return [self.label] if self.requests is not None else [item.uri for item in self.files]


@dataclass(frozen=True)
class InputSummary:
    """What :func:`validate` found.

    ``total`` counts every request read, ``unique`` counts identical repeats once (the service
    keeps one of them), ``per_source`` maps each file URI (or the list label) to its request count.
    """

    total: int
    unique: int
    per_source: dict[str, int] = field(default_factory=dict)


def expand_sources(source: Any, *, conn_id: str | None = None) -> tuple[InputFile, ...]:
    """Expand one location or a list of them into the files to read, in a deterministic order.

    Locations are taken in the order given; the files a glob matches are sorted by URI. A file
    matched twice is read once. A glob matching no file, a missing file or a folder is an
    :class:`XAIInputError` naming the location.

    >>> [item.uri for item in expand_sources("/data/in/*.jsonl")]  # doctest: +SKIP
    ['file:///data/in/part-1.jsonl', 'file:///data/in/part-2.jsonl.gz']
    """
    locations = _locations(source)
    files: list[InputFile] = []
    seen: set[str] = set()
    for location in locations:
        for item in _expand_one(location, conn_id):
            if item.uri not in seen:
                seen.add(item.uri)
                files.append(item)
    return tuple(files)


def _locations(source: Any) -> list[Any]:
    if isinstance(source, (str, os.PathLike, ObjectStoragePath)):
        return [source]
    if isinstance(source, Sequence) and not isinstance(source, (bytes, bytearray)):
        if not source:
            raise XAIInputError("the list of locations is empty", source="source")
        for index, item in enumerate(source):
            if not isinstance(item, (str, os.PathLike, ObjectStoragePath)):
                raise XAIInputError(
                    f"a location must be a URI string or an ObjectStoragePath, got {type(item).__name__}",
                    source="source",
                    position=f"item {index}",
                )
        return list(source)
    raise XAIInputError(
        f"source must be a URI or a list of URIs, got {type(source).__name__}", source="source"
    )


def _path_for(location: Any, conn_id: str | None) -> Any:
    if isinstance(location, ObjectStoragePath):
        return location
    return ObjectStoragePath(as_uri(os.fspath(location)), conn_id=conn_id)


def _expand_one(location: Any, conn_id: str | None) -> list[InputFile]:
    path = _path_for(location, conn_id)
    label = str(path)
    fs = path.fs
    if has_glob(path.path):
        matches = fs.glob(path.path, detail=True)
        found = sorted(name for name, info in matches.items() if info.get("type") != "directory")
        if not found:
            raise XAIInputError("the pattern matches no file", source=label)
        return [_file_at(path, fs.unstrip_protocol(name), conn_id) for name in found]
    try:
        info = fs.info(path.path)
    except FileNotFoundError:
        raise XAIInputError("no such file", source=label) from None
    if info.get("type") == "directory":
        raise XAIInputError("this is a folder; name its files with a glob such as .../*.jsonl", source=label)
    return [InputFile(label, path)]


def _file_at(pattern_path: Any, uri: str, conn_id: str | None) -> InputFile:
    # Reuse the pattern's connection so every match is read with the same credentials.
    storage_conn = getattr(pattern_path, "conn_id", None) or conn_id
    return InputFile(uri, ObjectStoragePath(uri, conn_id=storage_conn))


def require_one_input(requests: Any, source: Any, owner: str) -> None:
    """Refuse, when a task is defined, anything but exactly one of ``requests`` and ``source``."""
    if (requests is None) == (source is None):
        raise ValueError(
            f"{owner}: give exactly one of 'requests' (a list of request objects) or 'source' (URIs of JSONL files)"
        )


def resolve_input(
    *,
    requests: Any = None,
    source: Any = None,
    source_conn_id: str | None = None,
    source_label: str = REQUESTS_LABEL,
) -> ResolvedInput:
    """Check that exactly one of ``requests`` or ``source`` is given, and pin it down.

    ``requests`` must be a list (or tuple) of request objects, typically from XCom; ``source`` one
    URI or a list of URIs, globs allowed (expanded here, once).

    >>> resolve_input(requests=[{"custom_id": "q1", "body": {}}]).sources
    ['requests']
    """
    if (requests is None) == (source is None):
        raise XAIInputError(
            "give exactly one of 'requests' (a list of request objects) or 'source' (JSONL files)",
            source=source_label if source is None else "source",
        )
    if source is not None:
        return ResolvedInput(files=expand_sources(source, conn_id=source_conn_id))
    if isinstance(requests, (str, bytes, bytearray, Mapping)) or not isinstance(requests, Sequence):
        hint = (
            " (a templated string stays a string; pass the XComArg itself, or set "
            "render_template_as_native_obj=True on the DAG)"
            if isinstance(requests, str)
            else ""
        )
        raise XAIInputError(
            f"requests must be a list of request objects, got {type(requests).__name__}{hint}",
            source=source_label,
        )
    return ResolvedInput(requests=requests, label=source_label)


# -- reading ----------------------------------------------------------------------------------------


class _GzipReader:
    """A gzip stream whose corruption surfaces as an :class:`XAIInputError` naming the file."""

    def __init__(self, raw: IO[bytes], uri: str) -> None:
        self._gzip = gzip.GzipFile(fileobj=raw, mode="rb")
        self._uri = uri

    def read(self, size: int = -1) -> bytes:
        try:
            return self._gzip.read(size)
        # Only the decompressor's own errors: a storage read failure must stay what it is.
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise XAIInputError(
                f"the gzip data is corrupt or truncated ({exc or type(exc).__name__})", source=self._uri
            ) from None


def _iter_file_lines(item: InputFile) -> Iterator[tuple[int, Any]]:
    """``(line number, parsed object)`` for each non-blank line of one file, streamed."""
    try:
        handle = item.path.open("rb")
    except FileNotFoundError:
        raise XAIInputError("no such file", source=item.uri) from None
    with handle:
        head = handle.read(len(GZIP_MAGIC))
        if handle.seekable():
            handle.seek(0)
            stream: Any = handle
        else:  # pragma: no cover - object storage files are seekable; kept for odd filesystems
            stream = _Prefixed(head, handle)
        if is_gzip(item.uri, head):
            stream = _GzipReader(stream, item.uri)
        count = 0
        for line_number, parsed in iter_jsonl(stream, source=item.uri):
            count += 1
            yield line_number, parsed
    if count == 0:
        raise XAIInputError(
            "the file holds no requests (it is empty or has only blank lines)", source=item.uri
        )


class _Prefixed:
    """A read-only stream that first returns bytes already read from ``rest``."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        if self._head:
            head, self._head = self._head, b""
            if size < 0:
                return head + self._rest.read()
            return head + self._rest.read(max(size - len(head), 0))
        return self._rest.read(size)


def _iter_positioned(resolved: ResolvedInput) -> Iterator[tuple[str, str, NativeRequest]]:
    """``(source, position label, native request)`` for every request of the input, lazily."""
    if resolved.requests is not None:
        for index, request in enumerate(resolved.requests):
            yield (
                resolved.label,
                f"item {index}",
                normalise_request(request, source=resolved.label, position=index),
            )
        return
    for item in resolved.files:
        for line_number, parsed in _iter_file_lines(item):
            where = f"line {line_number}"
            yield item.uri, where, normalise_request(parsed, source=item.uri, position=where)


def validate(resolved: ResolvedInput, *, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES) -> InputSummary:
    """Read the whole input once and check every request; raise :class:`XAIInputError` at the first problem.

    Checks each request's shape, endpoint url, body and id, its encoded size against
    ``max_request_bytes``, and that no id is used for different content anywhere in the input
    (across all files). Nothing is sent. Memory stays flat: one line at a time, plus about 100
    bytes per request for the id check.

    >>> validate(resolve_input(requests=[{"body": {"model": "grok-4.3", "messages": [1]}}])).per_source
    {'requests': 1}
    """
    checker = DuplicateIdChecker()
    per_source: dict[str, int] = dict.fromkeys(resolved.sources, 0)
    total = unique = 0
    for source, where, request in _iter_positioned(resolved):
        check_request_size(request, encode_request(request), max_request_bytes, source=source, position=where)
        if checker.check(request, source=source, position=where):
            unique += 1
        total += 1
        per_source[source] += 1
    return InputSummary(total=total, unique=unique, per_source=per_source)


def iter_native(resolved: ResolvedInput) -> Iterator[NativeRequest]:
    """Stream the input's normalised native requests, each identical repeat only once.

    Meant for the second pass after :func:`validate`; a request id reused for other content (the
    input changed in between) still raises :class:`XAIInputError` rather than being sent.
    """
    checker = DuplicateIdChecker()
    for source, where, request in _iter_positioned(resolved):
        if checker.check(request, source=source, position=where):
            yield request


def add_from_input(
    hook: XAIBatchHook,
    batch_id: str,
    *,
    requests: Any = None,
    source: Any = None,
    source_conn_id: str | None = None,
    source_label: str = REQUESTS_LABEL,
    log: LogLike | None = None,
) -> int:
    """Validate the whole input, then stream it into a batch; return how many distinct requests were sent.

    Nothing is sent when any request is bad. Every request carries a deterministic id, so calling
    this again with the same input (a retry after a failure half-way) adds nothing twice and
    misses nothing: the service accepts an identical re-add as a no-op.

    >>> add_from_input(hook, "batch_123", source="s3://bucket/in/*.jsonl.gz",  # doctest: +SKIP
    ...                source_conn_id="aws_default")
    1200
    """
    resolved = resolve_input(
        requests=requests, source=source, source_conn_id=source_conn_id, source_label=source_label
    )
    limit = hook.get_conn().limits.max_request_bytes
    summary = validate(resolved, max_request_bytes=limit)
    if log is not None:
        for name, count in summary.per_source.items():
            log.info("%s: %d requests", name, count)
        log.info(
            "validated %d requests (%d distinct) from %d source(s); adding them to batch %s",
            summary.total,
            summary.unique,
            len(summary.per_source),
            batch_id,
        )
        if summary.unique == 0:
            log.warning("the request list is empty: nothing to add to batch %s", batch_id)
    if summary.unique == 0:
        return 0
    added = hook.add_requests(batch_id, iter_native(resolved), source=resolved.label)
    if added != summary.unique:
        raise XAIInputError(
            f"the input changed while it was being sent: validated {summary.unique} distinct requests, "
            f"sent {added}; run the task again to send the current input",
            source=", ".join(summary.per_source),
        )
    return added
