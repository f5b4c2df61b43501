"""Media files in the export folder: written as a stream with their digest, checked before re-use.

Locally a file is written under a hidden name and renamed into place, so a name never shows a
partial file. On an object store the upload itself lands whole (a multipart upload is committed
only when closed, and aborted on failure), so it is written under its final key.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import uuid
from typing import Any

from fsspec.implementations.local import LocalFileSystem

from airflow_provider_xai_batch.results.media.naming import MEDIA_FOLDER, media_path
from airflow_provider_xai_batch.results.staging import OutputFolder

# Large enough for S3 multipart parts (5 MiB minimum); one such buffer per file in flight.
_WRITE_BLOCK_BYTES = 5 * 1024 * 1024
_READ_BYTES = 1024 * 1024


class MediaSink:
    """One media file being written: bytes go straight to storage, counted and hashed on the way."""

    def __init__(self, storage: MediaStorage, name: str) -> None:
        self.storage = storage
        self.name = name
        self.size = 0
        self._sha = hashlib.sha256()
        final = storage.folder.path(media_path(name))
        self._target = final
        self._written = (
            storage.folder.path(f"{MEDIA_FOLDER}/.{name}.{uuid.uuid4().hex[:12]}.tmp")
            if storage.local
            else final
        )
        self._handle: Any = storage.folder.fs.open(self._written, "wb", block_size=_WRITE_BLOCK_BYTES)

    def write(self, data: bytes) -> None:
        self._handle.write(data)
        self._sha.update(data)
        self.size += len(data)

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    def commit(self) -> None:
        handle, self._handle = self._handle, None
        handle.close()
        if self._written != self._target:
            self.storage.folder.fs.mv(self._written, self._target)

    def discard(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            with contextlib.suppress(Exception):
                abort = getattr(handle, "discard", None)
                if callable(abort):
                    abort()
                handle.close()
        with contextlib.suppress(Exception):
            self.storage.folder.fs.rm_file(self._written)


class MediaStorage:
    """The ``media/`` folder of one export."""

    def __init__(self, folder: OutputFolder) -> None:
        self.folder = folder
        self.local = isinstance(folder.fs, LocalFileSystem)
        self._made = False
        self._lock = threading.Lock()

    def uri(self, name: str) -> str:
        return self.folder.uri(media_path(name))

    def open(self, name: str) -> MediaSink:
        if self.local:
            with self._lock:
                if not self._made:
                    self.folder.fs.makedirs(self.folder.path(MEDIA_FOLDER), exist_ok=True)
                    self._made = True
        return MediaSink(self, name)

    def stored(self, name: str) -> tuple[int, str] | None:
        """``(size, sha256)`` of the stored file ``name``, read back from storage; ``None`` if absent."""
        path = self.folder.path(media_path(name))
        fs = self.folder.fs
        try:
            handle = fs.open(path, "rb")
        except (FileNotFoundError, OSError):
            return None
        sha = hashlib.sha256()
        size = 0
        with handle:
            while chunk := handle.read(_READ_BYTES):
                sha.update(chunk)
                size += len(chunk)
        return size, sha.hexdigest()
