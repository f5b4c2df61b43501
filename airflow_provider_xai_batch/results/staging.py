"""The destination folder, and files that appear under their final names only once complete.

Every file is written under a hidden staging name in the destination folder and moved into place
when complete, so a reader never sees a partial file under a final name.

>>> folder = OutputFolder(resolve_output_folder("/tmp/results/batch_123"))  # doctest: +SKIP
>>> staged = StagedFile(folder, "succeeded.jsonl", token="0123456789ab")  # doctest: +SKIP
>>> staged.write(b'{"batch_request_id": "a"}\\n'); staged.publish()  # doctest: +SKIP
>>> staged.uri  # doctest: +SKIP
'file:///tmp/results/batch_123/succeeded.jsonl'
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import re
from collections.abc import Callable
from typing import Any

from airflow.sdk import ObjectStoragePath
from fsspec.implementations.local import LocalFileSystem

from airflow_provider_xai_batch.logs import LogLike
from airflow_provider_xai_batch.uris import as_uri

# Staging names: hidden, in the destination folder (so the final move stays within one store),
# and recognisable, so a later run can delete what a crashed one left behind.
_STAGING_NAME = re.compile(r"^\.((succeeded|failed)\.(jsonl|parquet)|manifest\.json)\.[0-9a-f]{12}\.tmp$")
# Big enough for S3 multipart parts (5 MiB minimum), far below s3fs' 50 MiB default per open file.
_WRITE_BLOCK_BYTES = 8 * 1024 * 1024
# How much of a local file is handed to the disk at a time while it is written (see
# ``_start_writeback``): the fsync at the end then only waits for the last piece.
_WRITEBACK_BYTES = 8 * 1024 * 1024
# sync_file_range(2): start writing the dirty pages of a range out, without waiting for them.
_SYNC_FILE_RANGE_WRITE = 2

_log = logging.getLogger(__name__)


def resolve_output_folder(
    output_path: ObjectStoragePath | str | os.PathLike[str], conn_id: str | None = None
) -> ObjectStoragePath:
    """The destination folder as an ``ObjectStoragePath``; a plain local path becomes ``file://``.

    >>> resolve_output_folder("/tmp/out").protocol
    'file'
    """
    if isinstance(output_path, ObjectStoragePath):
        return output_path
    return ObjectStoragePath(as_uri(os.fspath(output_path)), conn_id=conn_id)


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


class OutputFolder:
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

    def remove_stale_staging(self, log: LogLike) -> None:
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


@functools.lru_cache(maxsize=1)
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """Linux's ``sync_file_range`` from the C library, or ``None`` where there is none.

    Python's ``os`` does not offer it. ctypes releases the GIL for the call, so the fetch thread
    keeps running meanwhile. The process's own symbols include the C library's (and looking them
    up there spares ``find_library``, which runs ``ldconfig``).
    """
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError, TypeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    return function


def _start_writeback(handle: Any, offset: int, length: int) -> bool:
    """Ask the kernel to start writing ``length`` bytes from ``offset`` to disk; whether it could.

    A local export writes hundreds of MB that the kernel would otherwise keep in memory until the
    fsync at close, which then held the export for all of it at once (about 4 % of an export's
    time). Started as the file grows, the writing overlaps with fetching the next pages.
    """
    function = _sync_file_range()
    if function is None:
        return False
    try:
        # fileno first: an object store's file has none, and its flush would send a part early.
        fd = handle.fileno()
        handle.flush()
    except (AttributeError, OSError, ValueError):
        return False
    return function(fd, offset, length, _SYNC_FILE_RANGE_WRITE) == 0


class StagedFile:
    """A file written under a hidden staging name, then moved to its final name when complete."""

    def __init__(self, folder: OutputFolder, name: str, token: str) -> None:
        self.folder = folder
        self.name = name
        self.staging_name = f".{name}.{token}.tmp"
        self.size = 0
        self._handle: Any = folder.fs.open(
            folder.path(self.staging_name), "wb", block_size=_WRITE_BLOCK_BYTES
        )
        self._published = False
        # Bytes already handed to the disk; None once that is known not to work for this file.
        self._written_back: int | None = 0

    @property
    def uri(self) -> str:
        return self.folder.uri(self.name)

    def write(self, data: bytes) -> None:
        if data:
            self._handle.write(data)
            self.size += len(data)
            start = self._written_back
            if start is not None and self.size - start >= _WRITEBACK_BYTES:
                self._written_back = (
                    self.size if _start_writeback(self._handle, start, self.size - start) else None
                )

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
