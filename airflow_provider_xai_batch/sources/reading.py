"""Reading the input one request at a time: JSONL files (gzip or not) or a list, normalised.

>>> from airflow_provider_xai_batch.sources.resolve import resolve_input
>>> resolved = resolve_input(requests=[{"custom_id": "q1", "body": {
...     "model": "grok-4.3", "messages": [{"role": "user", "content": "Hi"}]}}])
>>> [(source, where) for source, where, _ in iter_positioned(resolved)]
[('requests', 'item 0')]
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from typing import IO, Any

from airflow_provider_xai_batch.client.errors import XAIInputError
from airflow_provider_xai_batch.client.inputs import NativeRequest, iter_jsonl, normalise_request
from airflow_provider_xai_batch.sources.locations import InputFile
from airflow_provider_xai_batch.sources.resolve import ResolvedInput

GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(name: str, head: bytes) -> bool:
    """Whether a file is gzip-compressed: by its ``.gz`` suffix or by the gzip magic bytes.

    The magic bytes catch compressed files without the suffix; the suffix catches a ``.gz`` file
    whose content is not gzip, so that it is reported as corrupt rather than parsed as text.

    >>> is_gzip("part-1.jsonl.gz", b""), is_gzip("part-1.jsonl", b"\\x1f\\x8b"), is_gzip("a.jsonl", b"{")
    (True, True, False)
    """
    return name.lower().endswith(".gz") or head.startswith(GZIP_MAGIC)


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


def iter_file_lines(item: InputFile) -> Iterator[tuple[int, Any]]:
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


def iter_positioned(resolved: ResolvedInput) -> Iterator[tuple[str, str, NativeRequest]]:
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
        for line_number, parsed in iter_file_lines(item):
            where = f"line {line_number}"
            yield item.uri, where, normalise_request(parsed, source=item.uri, position=where)
