"""What the previous export of the same folder stored: its ``succeeded.jsonl``, read alongside the new one.

Both exports write rows in ``batch_request_id`` order, so the old file is read forward as the new
rows come (a merge, not an index): memory stays one line whatever the size of the batch.
"""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec

from airflow_provider_xai_batch.results.manifest import SUCCEEDED_FILE
from airflow_provider_xai_batch.results.staging import OutputFolder


class _Previous(msgspec.Struct):
    batch_request_id: str
    media: list[dict[str, Any]] | None = None


_DECODE = msgspec.json.Decoder(_Previous).decode


class PreviousMedia:
    """The ``media`` entries an earlier export recorded per request, looked up in ascending id order."""

    def __init__(self, folder: OutputFolder) -> None:
        self.folder = folder
        self._handle: Any = None
        self._opened = False
        self._current: _Previous | None = None

    def lookup(self, batch_request_id: str) -> list[dict[str, Any]]:
        """The entries recorded for ``batch_request_id`` (empty when none); ids must come in ascending order."""
        if not self._opened:
            self._open()
        while self._current is not None and self._current.batch_request_id < batch_request_id:
            self._current = self._next()
        current = self._current
        if current is None or current.batch_request_id != batch_request_id:
            return []
        return [entry for entry in current.media or [] if isinstance(entry, dict)]

    def close(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            with contextlib.suppress(Exception):
                handle.close()

    def _open(self) -> None:
        self._opened = True
        try:
            self._handle = self.folder.fs.open(self.folder.path(SUCCEEDED_FILE), "rb")
        except (FileNotFoundError, OSError):
            return
        self._current = self._next()

    def _next(self) -> _Previous | None:
        while self._handle is not None:
            line = self._handle.readline()
            if not line:
                self.close()
                return None
            try:
                return _DECODE(line)
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue
        return None
