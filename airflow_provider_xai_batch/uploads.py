"""Input files for file batches: validated locally, rewritten as clean JSONL, uploaded once per task.

xAI validates an uploaded file only after a batch was created from it, and then cancels the whole
batch at the first bad line. Everything is therefore checked here first, with the same file:line
errors as adding requests (:mod:`airflow_provider_xai_batch.sources`), so xAI never has to reject
the file. The input is read in three streamed passes; memory does not grow with it:

1. :func:`~airflow_provider_xai_batch.sources.validate`: every request, with its file and line.
2. :func:`plan_upload`: the exact bytes, request count and digest of the file to upload.
3. :class:`UploadStream`: the same lines again, as the body of the upload.

The uploaded file holds one OpenAI-style line per distinct request,
``{"custom_id", "method", "url", "body"}``, whatever shape the input had (native, JSONL or short;
``.jsonl.gz`` too). Requests without an id get the same deterministic id the add operator gives
them (from file URI and line), so results correlate with input lines in both modes.

>>> from airflow_provider_xai_batch.sources import resolve_input
>>> resolved = resolve_input(requests=[{"custom_id": "q1", "body": {
...     "model": "grok-4.3", "messages": [{"role": "user", "content": "Hi"}]}}])
>>> plan = plan_upload(resolved, filename_stem="prompts")
>>> plan.requests, plan.filename.startswith("prompts-")
(1, True)
>>> UploadStream(plan).read()
b'{"custom_id":"q1","method":"POST","url":"/v1/chat/completions","body":{"model":"grok-4.3","messages":[{"role":"user","content":"Hi"}]}}\\n'
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Protocol, cast

import msgspec

from airflow_provider_xai_batch.client.errors import XAIInputError, XAINotFoundError
from airflow_provider_xai_batch.client.inputs import NativeRequest
from airflow_provider_xai_batch.client.models import UploadedFile
from airflow_provider_xai_batch.sources import ResolvedInput, iter_native
from airflow_provider_xai_batch.task_state import reuse_or_make

if TYPE_CHECKING:
    from airflow_provider_xai_batch.logs import LogLike

__all__ = [
    "FILE_ID_STATE_KEY",
    "MAX_FILE_BYTES",
    "MAX_FILE_REQUESTS",
    "FileStore",
    "UploadPlan",
    "UploadStream",
    "check_file_limits",
    "find_uploaded",
    "jsonl_line",
    "plan_upload",
    "upload_or_reuse",
]

# xAI's per-file limits (current docs); both are settings of the operators that upload.
MAX_FILE_REQUESTS = 50_000
MAX_FILE_BYTES = 200_000_000
FILE_ID_STATE_KEY = "xai_file_id"

# The url each kind is written under: the one xAI's file format documents for it.
KIND_URLS: Mapping[str, str] = {
    "chat_get_completion": "/v1/chat/completions",
    "responses": "/v1/responses",
    "image_generation": "/v1/images/generations",
    "image_edit": "/v1/images/edits",
    "video_generation": "/v1/videos/generations",
    "video_extension": "/v1/videos/extensions",
}

_DIGEST_CHARS = 12
_STEM_CHARS = 60
_SLUG = re.compile(r"[^A-Za-z0-9_.-]+")
_encode = msgspec.json.Encoder().encode


def jsonl_line(request: NativeRequest) -> bytes:
    """One native request as a line of xAI's input-file format (compact JSON, newline-terminated).

    >>> jsonl_line({"batch_request_id": "a", "batch_request": {"responses": {"model": "m", "input": "x"}}})
    b'{"custom_id":"a","method":"POST","url":"/v1/responses","body":{"model":"m","input":"x"}}\\n'
    """
    ((kind, body),) = request["batch_request"].items()
    line = {"custom_id": request["batch_request_id"], "method": "POST", "url": KIND_URLS[kind], "body": body}
    return _encode(line) + b"\n"


def _iter_lines(resolved: ResolvedInput) -> Iterator[bytes]:
    for request in iter_native(resolved):
        yield jsonl_line(request)


@dataclass(frozen=True)
class UploadPlan:
    """What will be uploaded: the pinned input, and the exact size, count and name of the file.

    ``filename`` carries ``name_suffix`` (one per task instance, see
    :func:`~airflow_provider_xai_batch.operators._resume.name_suffix`) and a digest of the content,
    so a retry recognises its own earlier upload, and a changed input is never mistaken for it.
    """

    resolved: ResolvedInput
    requests: int
    size: int
    digest: str
    filename: str

    def lines(self) -> Iterator[bytes]:
        """The file's lines, read again from the input."""
        return _iter_lines(self.resolved)


def _stem(resolved: ResolvedInput, filename_stem: str | None) -> str:
    if filename_stem is None:
        first = resolved.sources[0] if resolved.sources else "requests"
        filename_stem = first.rstrip("/").rsplit("/", 1)[-1]
    for suffix in (".gz", ".jsonl", ".json"):
        if filename_stem.lower().endswith(suffix):
            filename_stem = filename_stem[: -len(suffix)]
    return (_SLUG.sub("-", filename_stem).strip("-.") or "requests")[:_STEM_CHARS]


def plan_upload(
    resolved: ResolvedInput, *, filename_stem: str | None = None, name_suffix: str | None = None
) -> UploadPlan:
    """Measure the file to upload (one streamed pass): bytes, distinct requests, digest and name.

    Call it after :func:`~airflow_provider_xai_batch.sources.validate`, which names the file and
    line of any bad request; here only identical repeats are dropped (xAI would reject a file that
    repeats a ``custom_id``).
    """
    hasher = hashlib.blake2b(digest_size=16)
    size = count = 0
    for line in _iter_lines(resolved):
        hasher.update(line)
        size += len(line)
        count += 1
    digest = hasher.hexdigest()[:_DIGEST_CHARS]
    parts = [_stem(resolved, filename_stem), *([name_suffix] if name_suffix else []), digest]
    return UploadPlan(resolved, requests=count, size=size, digest=digest, filename="-".join(parts) + ".jsonl")


def check_file_limits(
    plan: UploadPlan, *, max_requests: int = MAX_FILE_REQUESTS, max_bytes: int = MAX_FILE_BYTES
) -> None:
    """Refuse a file xAI would refuse: more requests or bytes than one input file may hold.

    >>> from airflow_provider_xai_batch.sources import resolve_input
    >>> plan = UploadPlan(resolve_input(requests=[]), requests=60_000, size=10, digest="d", filename="f")
    >>> check_file_limits(plan)
    Traceback (most recent call last):
    ...
    airflow_provider_xai_batch.client.errors.XAIInputError: requests: the input holds 60,000 requests, \
over the 50,000 one batch file may hold; split it into several files (one batch each), or add the \
requests to an inline batch, which has no such limit
    """
    where = ", ".join(plan.resolved.sources)
    advice = (
        "split it into several files (one batch each), or add the requests to an inline batch, "
        "which has no such limit"
    )
    if plan.requests == 0:
        raise XAIInputError("the input holds no requests; a batch file needs at least one", source=where)
    if plan.requests > max_requests:
        raise XAIInputError(
            f"the input holds {plan.requests:,} requests, over the {max_requests:,} one batch file may "
            f"hold; {advice}",
            source=where,
        )
    if plan.size > max_bytes:
        raise XAIInputError(
            f"the file to upload is {plan.size:,} bytes, over the {max_bytes:,} bytes one batch file "
            f"may hold; {advice}",
            source=where,
        )


class UploadStream(io.RawIOBase):
    """The upload's body: the plan's lines, produced while they are sent, never held in full.

    Looks like a seekable file of exactly ``plan.size`` bytes, which is what an HTTP client needs to
    send a ``Content-Length`` and to rewind for a retry: seeking to the start reads the input again.
    If the input no longer yields the planned bytes (it changed since it was measured), reading
    raises :class:`XAIInputError` instead of sending something else.
    """

    def __init__(self, plan: UploadPlan) -> None:
        super().__init__()
        self.plan = plan
        self.name = plan.filename
        self._lines: Iterator[bytes] = iter(())
        self._buffer = b""
        self._position = 0
        self._at_end = False
        self.seek(0)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.plan.size if self._at_end else self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        # Only what clients do: rewind to the start, measure (end), or stay where we are.
        if whence == os.SEEK_END and offset == 0:
            self._at_end = True
            return self.plan.size
        target = offset if whence == os.SEEK_SET else self.tell() + offset
        if target == 0:
            self._lines, self._buffer, self._position, self._at_end = self.plan.lines(), b"", 0, False
            return 0
        if target == self.tell():
            return target
        raise io.UnsupportedOperation("an upload stream rewinds only to its start")

    def readinto(self, buffer: Any) -> int:
        if self._at_end:
            return 0
        view = memoryview(buffer).cast("B")
        wanted = len(view)
        while len(self._buffer) < wanted:
            line = next(self._lines, None)
            if line is None:
                break
            self._buffer += line
        chunk, self._buffer = self._buffer[:wanted], self._buffer[wanted:]
        self._position += len(chunk)
        if self._position > self.plan.size or (not chunk and self._position != self.plan.size):
            raise XAIInputError(
                f"the input changed while it was being uploaded (planned {self.plan.size:,} bytes, "
                f"read {self._position:,}); run the task again to upload the current input",
                source=", ".join(self.plan.resolved.sources),
            )
        view[: len(chunk)] = chunk
        return len(chunk)


class FileStore(Protocol):
    """Where files are uploaded: the hook (as operators pass it) or a client."""

    def upload_file(self, file: IO[bytes], /, *, filename: str | None = ...) -> UploadedFile: ...

    def get_file(self, file_id: str, /) -> UploadedFile: ...

    def iter_files(self, *, page_size: int = ...) -> Iterator[UploadedFile]: ...


def find_uploaded(client: FileStore, plan: UploadPlan) -> UploadedFile | None:
    """An earlier upload of exactly this file (same name, hence same task instance and content)."""
    for uploaded in client.iter_files(page_size=100):
        if uploaded.filename == plan.filename and uploaded.bytes in (None, plan.size):
            return uploaded
    return None


def _stored_upload(client: FileStore, file_id: str, plan: UploadPlan) -> UploadedFile | None:
    try:
        uploaded = client.get_file(file_id)
    except XAINotFoundError:  # deleted or expired since: upload again
        return None
    return uploaded if uploaded.filename == plan.filename else None


def upload_or_reuse(
    client: FileStore,
    plan: UploadPlan,
    context: Mapping[str, Any] | None,
    *,
    log: LogLike | None = None,
) -> str:
    """Upload the planned file, or return the id of the one an earlier try of this task uploaded.

    Like batch creation (:func:`~airflow_provider_xai_batch.operators._resume.create_or_reattach`):
    the file id is kept in the task state store on Airflow >= 3.3; a retry without it (older
    Airflow, or a crash before the id was stored) looks for a file with the plan's name. The first
    try never lists files. A file whose content differs has another name, so it is never reused.
    """

    def upload() -> UploadedFile:
        return client.upload_file(cast(IO[bytes], UploadStream(plan)), filename=plan.filename)

    found = reuse_or_make(
        context,
        FILE_ID_STATE_KEY,
        load=lambda file_id: _stored_upload(client, file_id, plan),
        find=lambda: find_uploaded(client, plan),
        make=upload,
        id_of=lambda uploaded: uploaded.id,
    )
    if log is not None:
        if found.how == "made":
            log.info(
                "uploaded %s as file %s: %d requests, %d bytes",
                plan.filename,
                found.item.id,
                plan.requests,
                plan.size,
            )
        else:
            log.info("re-using file %s (%s), uploaded by an earlier try", found.item.id, plan.filename)
    return found.item.id
