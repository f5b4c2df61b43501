"""The pure part of speaking the wire contract: no I/O here, so all of it is tested without a network.

Request building, response parsing and packing add calls under the size cap (pacing and retry
decisions are in :mod:`.policy`). ``sync.py`` and ``aio.py`` only run these decisions over
``httpx.Client`` and ``httpx.AsyncClient``.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import quote

from airflow_provider_xai_batch.client.policy import ADD_CALL_ENVELOPE

DEFAULT_BASE_URL = "https://api.x.ai"

_CALL_PREFIX, _CALL_SUFFIX = ADD_CALL_ENVELOPE


@dataclass(frozen=True)
class AddCall:
    """One packed add-requests call: its JSON body in pieces, how many requests it carries, where each starts.

    The body stays in pieces of about :data:`CHUNK_BYTES` rather than one 25 MB string: repeated
    huge allocations make glibc's heap grow with the number of calls, pieces keep memory flat.
    ``starts`` holds the offset of each request in the body (8 bytes a request), so a call the
    service rejects as a whole can be split (:meth:`split`) to find the request it objects to.

    >>> call = next(pack_add_calls([("a", b'{"x":1}'), ("b", b'{"y":2}'), ("c", b"{}")], max_body_bytes=99))
    >>> first, second = call.split()
    >>> first.body, second.body, second.request_body(1)
    (b'{"batch_requests":[{"x":1}]}', b'{"batch_requests":[{"y":2},{}]}', b'{}')
    """

    chunks: tuple[bytes, ...]
    size: int
    count: int
    starts: array[int]

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def _end(self, index: int) -> int:
        """Where request ``index`` ends: before the next one's comma, or before the closing bracket."""
        return self.starts[index + 1] - 1 if index + 1 < self.count else self.size - len(_CALL_SUFFIX)

    def request_body(self, index: int) -> bytes:
        """The encoded JSON of request ``index`` (0-based within this call)."""
        return self.body[self.starts[index] : self._end(index)]

    def split(self) -> tuple[AddCall, AddCall]:
        """The first and the second half of this call's requests, each a call of its own."""
        if self.count < 2:
            raise ValueError("a call with one request cannot be split")
        middle = self.count // 2
        body = memoryview(self.body)
        return self._part(body, 0, middle), self._part(body, middle, self.count)

    def _part(self, body: memoryview, first: int, stop: int) -> AddCall:
        start, end = self.starts[first], self._end(stop - 1)
        shift = start - len(_CALL_PREFIX)
        starts = array("Q", (offset - shift for offset in self.starts[first:stop]))
        content = bytes(body[start:end])
        size = len(_CALL_PREFIX) + len(content) + len(_CALL_SUFFIX)
        return AddCall((_CALL_PREFIX, content, _CALL_SUFFIX), size, stop - first, starts)


# Pieces of a body: big enough that a 25 MB call goes out in a few dozen socket writes, small
# enough that no allocation is large enough for glibc to grow its heap around it (see AddCall).
CHUNK_BYTES = 1 << 20


def pack_add_calls(
    encoded: Iterable[tuple[str, bytes]],
    *,
    max_body_bytes: int,
    max_requests: int | None = None,
    first_body_bytes: int | None = None,
    sender_idle: Callable[[], bool] | None = None,
) -> Iterator[AddCall]:
    """Pack encoded requests ``(id, json_bytes)`` into add-call bodies of at most ``max_body_bytes``.

    Order is kept, nothing is dropped, and only one call's worth of requests is held at a time.
    A request too large to fit any call raises ``ValueError`` (inputs are size-checked before this).
    With ``first_body_bytes``, the first call is at most that big and each later one may be twice
    the one before, up to ``max_body_bytes``: a sender that packs the next call while this one is
    on its way starts sending sooner (a request larger than the current step still gets a call).

    ``sender_idle`` (asked once per :data:`CHUNK_BYTES` packed) lets the sender's pace size the
    calls instead: a call grows, up to ``max_body_bytes``, for as long as the call before it is on
    its way, and goes out once that one is answered and it is at least twice its size. A service
    that answers slowly (a fixed time per call, whatever its size) gets full calls after the
    first; a fast one gets calls that grow by the ratio of its pace to the packer's. Either way the
    service never waits on the packer, and no call is smaller than with doubling.

    >>> calls = list(pack_add_calls([("a", b'{"x":1}'), ("b", b'{"y":2}')], max_body_bytes=40))
    >>> [(call.count, call.size, call.body) for call in calls]
    [(2, 36, b'{"batch_requests":[{"x":1},{"y":2}]}')]
    >>> items = [(str(i), b'{"n":%d}' % i) for i in range(12)]
    >>> [call.size for call in pack_add_calls(items, max_body_bytes=80, first_body_bytes=30)]
    [28, 60, 70]
    """
    overhead = len(_CALL_PREFIX) + len(_CALL_SUFFIX)
    step = max_body_bytes if first_body_bytes is None else min(first_body_bytes, max_body_bytes)
    # Where a call must end: its step, or with ``sender_idle`` the largest call (see above).
    limit = step if sender_idle is None else max_body_bytes
    # One loop with local state, not a builder object: this runs once per request.
    chunks: list[bytes] = [_CALL_PREFIX]
    group: list[bytes] = []
    group_size, size, count = 0, overhead, 0
    starts = array("Q")
    for request_id, body in encoded:
        length = len(body)
        if overhead + length > max_body_bytes:
            raise ValueError(f"request {request_id!r} alone exceeds the {max_body_bytes}-byte call limit")
        if count and (size + length + 1 > limit or (max_requests is not None and count >= max_requests)):
            if group:
                chunks.append(b",".join(group))
            chunks.append(_CALL_SUFFIX)
            yield AddCall(tuple(chunks), size, count, starts)
            step = min((step if sender_idle is None else size) * 2, max_body_bytes)
            limit = step if sender_idle is None else max_body_bytes
            chunks, group, group_size, size, count, starts = [_CALL_PREFIX], [], 0, overhead, 0, array("Q")
        if count:
            if not group:
                group.append(b"")  # the comma between this piece and the previous one
            starts.append(size - len(_CALL_SUFFIX) + 1)
            size += length + 1
        else:
            starts.append(size - len(_CALL_SUFFIX))
            size += length
        group.append(body)
        group_size += length
        count += 1
        if group_size >= CHUNK_BYTES:
            chunks.append(b",".join(group))
            group, group_size = [], 0
            if sender_idle is not None and size >= step and sender_idle():
                chunks.append(_CALL_SUFFIX)
                yield AddCall(tuple(chunks), size, count, starts)
                step = min(size * 2, max_body_bytes)
                chunks, size, count, starts = [_CALL_PREFIX], overhead, 0, array("Q")
    if count:
        if group:
            chunks.append(b",".join(group))
        chunks.append(_CALL_SUFFIX)
        yield AddCall(tuple(chunks), size, count, starts)


class BodyChunks:
    """A request body sent piece by piece, re-iterable for retries, for both httpx clients."""

    def __init__(self, chunks: tuple[bytes, ...], size: int) -> None:
        self.chunks = chunks
        self.size = size

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.chunks)

    def discard(self) -> None:
        """Drop the pieces once the call is done.

        httpx's request and response objects reference each other, so they wait for the cyclic
        garbage collector; dropping the pieces here frees the 25 MB at once instead.
        """
        self.chunks = ()

    def for_async(self) -> AsyncBodyChunks:
        """The same pieces as an async-only iterable: httpx treats anything iterable as sync."""
        return AsyncBodyChunks(self.chunks)


class AsyncBodyChunks:
    def __init__(self, chunks: tuple[bytes, ...]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


@dataclass(frozen=True)
class FileUpload:
    """A multipart upload of an open binary file, with its form fields.

    ``start`` is where a seekable file was when the upload was planned (each attempt rewinds to
    it); ``None`` for a file that cannot be rewound, which therefore cannot be sent twice.
    """

    file: IO[bytes]
    filename: str
    form: Mapping[str, str]
    start: int | None

    def rewind(self) -> None:
        if self.start is not None:
            self.file.seek(self.start)


@dataclass(frozen=True)
class ApiCall:
    """A request to make: everything the transports need, nothing they must decide.

    ``resend_safe`` says whether sending it twice is harmless (reads, adds with deterministic ids,
    cancel); ``pace`` names the rate limit it counts against; ``stream`` asks for the answer's body
    to be read by the caller, piece by piece.
    """

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    content: bytes | BodyChunks | None = None
    upload: FileUpload | None = None
    resend_safe: bool = True
    pace: str | None = None
    stream: bool = False

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    def before_attempt(self) -> None:
        """Make the call ready to be sent (again): an upload starts from its first byte."""
        if self.upload is not None:
            self.upload.rewind()

    def discard_body(self) -> None:
        """Free a large body once the call has succeeded or finally failed."""
        if isinstance(self.content, BodyChunks):
            self.content.discard()


def _segment(value: str) -> str:
    if not value or "/" in value:
        raise ValueError(f"invalid id {value!r}")
    return quote(value, safe="")


def create_batch_call(name: str, input_file_id: str | None = None) -> ApiCall:
    payload: dict[str, Any] = {"name": name}
    if input_file_id:
        payload["input_file_id"] = input_file_id
    return ApiCall("POST", "/v1/batches", json=payload, resend_safe=False, pace="create")


def get_batch_call(batch_id: str) -> ApiCall:
    return ApiCall("GET", f"/v1/batches/{_segment(batch_id)}")


def cancel_batch_call(batch_id: str) -> ApiCall:
    # Note the colon: the service routes ``:cancel`` as a custom method, not a sub-resource.
    return ApiCall("POST", f"/v1/batches/{_segment(batch_id)}:cancel", json={})


def add_requests_call(batch_id: str, call: AddCall) -> ApiCall:
    content = BodyChunks(call.chunks, call.size)
    return ApiCall("POST", f"/v1/batches/{_segment(batch_id)}/requests", content=content, pace="add")


def upload_file_call(file: IO[bytes], filename: str | None, expires_after: int | None) -> ApiCall:
    """The multipart upload of an open binary file.

    The form field comes before the file, as the service requires for ``expires_after``. A seekable
    file is rewound before each attempt, so the upload may be retried; others may not.
    """
    name = filename or os.path.basename(str(getattr(file, "name", "batch.jsonl"))) or "batch.jsonl"
    form = {"expires_after": str(expires_after)} if expires_after is not None else {}
    seekable = file.seekable() if hasattr(file, "seekable") else False
    upload = FileUpload(file, name, form, file.tell() if seekable else None)
    return ApiCall("POST", "/v1/files", upload=upload, resend_safe=seekable)


def file_content_call(file_id: str) -> ApiCall:
    return ApiCall("GET", f"{file_path(file_id)}/content", stream=True)


def list_call(path: str, limit: int, token: str | None) -> ApiCall:
    params: dict[str, Any] = {"limit": limit}
    if token:
        params["pagination_token"] = token
    return ApiCall("GET", path, params=params)


def batches_path() -> str:
    return "/v1/batches"


def batch_requests_path(batch_id: str) -> str:
    return f"/v1/batches/{_segment(batch_id)}/requests"


def results_path(batch_id: str) -> str:
    return f"/v1/batches/{_segment(batch_id)}/results"


def file_path(file_id: str) -> str:
    return f"/v1/files/{_segment(file_id)}"


def parse_page(payload: Any, key: str, *alternatives: str) -> tuple[list[Any], str | None]:
    """Items and the next token of one list page; a null, empty or absent token ends the listing.

    >>> parse_page({"results": [1, 2], "pagination_token": ""}, "results")
    ([1, 2], None)
    """
    if not isinstance(payload, Mapping):
        raise ValueError(f"expected a JSON object with {key!r}, got {type(payload).__name__}")
    items: Any = None
    for candidate in (key, *alternatives):
        if candidate in payload:
            items = payload[candidate]
            break
    if items is None:
        items = []
    if not isinstance(items, list):
        raise ValueError(f"expected {key!r} to be a list")
    token = payload.get("pagination_token") or payload.get("next_page_token") or None
    return items, (str(token) if token else None)


def page_size(value: int, *, maximum: int = 1000) -> int:
    """Clamp a page size into what the service accepts."""
    return max(1, min(int(value), maximum))
