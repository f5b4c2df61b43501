"""The media step of an export: each page's succeeded lines gain a ``media`` list, files land in ``media/``.

Lines of other kinds pass through untouched (a chat-only export pays one substring search per
page). For a page with images or videos, every item is stored a few at a time in worker threads,
then each line gets ``"media": [...]`` appended in the order of the response's items; the raw
response stays as it was.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import msgspec

from airflow_provider_xai_batch.logs import LogLike
from airflow_provider_xai_batch.results.media.fetch import MediaFailure, MediaFetcher
from airflow_provider_xai_batch.results.media.items import MEDIA_KINDS, MediaItem, media_items
from airflow_provider_xai_batch.results.media.naming import (
    CONTENT_TYPES,
    content_type_for,
    extension_for,
    media_file_name,
    sniff_content_type,
)
from airflow_provider_xai_batch.results.media.policy import MediaPolicy
from airflow_provider_xai_batch.results.media.previous import PreviousMedia
from airflow_provider_xai_batch.results.media.storage import MediaSink, MediaStorage
from airflow_provider_xai_batch.results.media.tally import MediaTally
from airflow_provider_xai_batch.results.staging import OutputFolder

_MARKERS = tuple(f'"kind":"{kind}"'.encode() for kind in sorted(MEDIA_KINDS))
_encode = msgspec.json.Encoder().encode

Entry = dict[str, Any]


class MediaStep:
    """Stores the media of succeeded rows under ``<folder>/media/`` and records it on each row.

    >>> with MediaStep(folder, MediaPolicy.for_connection(client.base_url), log) as step:  # doctest: +SKIP
    ...     lines = step.process(succeeded_lines)
    >>> step.tally.section("download")["files"]  # doctest: +SKIP
    3
    """

    def __init__(
        self,
        folder: OutputFolder,
        policy: MediaPolicy,
        log: LogLike,
        *,
        concurrency: int = 4,
        fetcher_factory: Callable[[MediaPolicy, int], MediaFetcher] | None = None,
    ) -> None:
        self.policy = policy
        self.log = log
        self.tally = MediaTally()
        self.storage = MediaStorage(folder)
        self.previous = PreviousMedia(folder)
        self._concurrency = max(1, concurrency)
        self._fetcher_factory = fetcher_factory or (lambda p, n: MediaFetcher(p, concurrency=n))
        self._fetcher: MediaFetcher | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> MediaStep:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the previous export's file, the threads and the connections."""
        self.previous.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        fetcher, self._fetcher = self._fetcher, None
        if fetcher is not None:
            fetcher.close()

    def wanted(self, kinds: Iterable[str]) -> bool:
        """Whether a page whose succeeded rows are of these kinds has media to store (chat pages have none).

        >>> MediaStep.wanted(None, {"chat_get_completion"}), MediaStep.wanted(None, {"image_generation"})
        (False, True)
        """
        return not MEDIA_KINDS.isdisjoint(kinds)

    def process(self, lines: bytes) -> bytes:
        """``succeeded.jsonl`` lines of one page, with ``media`` added to the lines that name media."""
        if not any(marker in lines for marker in _MARKERS):
            return lines
        self._client()  # made here, before any worker needs it
        rows = lines.split(b"\n")
        pending: list[tuple[int, list[Future[Entry]]]] = []
        for position, line in enumerate(rows):
            if not line or not any(marker in line for marker in _MARKERS):
                continue
            row = msgspec.json.decode(line)
            kind = row.get("kind") if isinstance(row, dict) else None
            if kind not in MEDIA_KINDS:
                continue
            request_id = str(row["batch_request_id"])
            items = media_items(str(kind), row.get("response"))
            previous = self.previous.lookup(request_id)
            futures = [
                self._executor().submit(
                    self._store_item, request_id, item, _entry_at(previous, item.position)
                )
                for item in items
            ]
            pending.append((position, futures))
        for position, futures in pending:
            entries = [future.result() for future in futures]
            line = rows[position]
            rows[position] = line[:-1] + b',"media":' + _encode(entries) + b"}"
        return b"\n".join(rows)

    # -- one item (worker threads) ---------------------------------------------------------------

    def _store_item(self, request_id: str, item: MediaItem, previous: Entry | None) -> Entry:
        try:
            if item.b64_json is not None:
                entry, reused = self._store_b64(request_id, item)
            elif item.url is not None:
                reused_entry = self._reuse(request_id, item, previous)
                entry, reused = (
                    (reused_entry, True) if reused_entry else (self._fetch(request_id, item), False)
                )
            else:
                raise MediaFailure("the response names no URL and no data for this item")
        except MediaFailure as failure:
            with self._lock:
                self.tally.failure(
                    request_id,
                    item.position,
                    failure.reason,
                    expired=failure.expired,
                    refused=failure.refused,
                    url=item.url,
                )
            return {"uri": None, "error": failure.reason}
        except Exception as error:  # storage errors: named on the row and in the manifest, not lost
            reason = f"{type(error).__name__}: {error}"
            with self._lock:
                self.tally.failure(request_id, item.position, reason, url=item.url)
            return {"uri": None, "error": reason}
        with self._lock:
            self.tally.stored(int(entry["bytes"]), reused=reused)
        return entry

    def _fetch(self, request_id: str, item: MediaItem) -> Entry:
        assert item.url is not None
        chosen: dict[str, str] = {}

        def open_sink(content_type: str | None) -> MediaSink:
            ext = extension_for(content_type, item.url)
            chosen["ext"] = ext
            return self.storage.open(media_file_name(request_id, item.position, ext))

        sink, content_type = self._client().fetch(item.url, open_sink)
        return _entry(self.storage.uri(sink.name), content_type_for(content_type, chosen["ext"]), sink)

    def _store_b64(self, request_id: str, item: MediaItem) -> tuple[Entry, bool]:
        assert item.b64_json is not None
        try:
            data = base64.b64decode(item.b64_json, validate=True)
        except (binascii.Error, ValueError):
            raise MediaFailure("b64_json is not valid base64") from None
        if len(data) > self.policy.max_bytes:
            raise MediaFailure(
                f"the file is {len(data)} bytes, above the limit of {self.policy.max_bytes} bytes"
            )
        sniffed = sniff_content_type(data[:16])
        ext = extension_for(sniffed, None)
        name = media_file_name(request_id, item.position, ext)
        digest = hashlib.sha256(data).hexdigest()
        content_type = content_type_for(sniffed, ext)
        if self.storage.stored(name) == (len(data), digest):
            return {
                "uri": self.storage.uri(name),
                "content_type": content_type,
                "bytes": len(data),
                "sha256": digest,
            }, True
        sink = self.storage.open(name)
        try:
            sink.write(data)
            sink.commit()
        except BaseException:
            sink.discard()
            raise
        return _entry(self.storage.uri(name), content_type, sink), False

    def _reuse(self, request_id: str, item: MediaItem, previous: Entry | None) -> Entry | None:
        """The earlier export's entry, when its file is still stored with the same size and digest."""
        if previous is None:
            return None
        uri, size, digest = previous.get("uri"), previous.get("bytes"), previous.get("sha256")
        content_type = previous.get("content_type")
        if not (isinstance(uri, str) and isinstance(size, int) and isinstance(digest, str)):
            return None
        ext = uri.rsplit(".", 1)[-1] if "." in uri else ""
        if ext not in CONTENT_TYPES and ext != "bin":
            return None
        name = media_file_name(request_id, item.position, ext)
        # Only a file this export would have written itself: a row cannot point the check elsewhere.
        if uri != self.storage.uri(name) or self.storage.stored(name) != (size, digest):
            return None
        return {"uri": uri, "content_type": content_type, "bytes": size, "sha256": digest}

    # -- shared resources ------------------------------------------------------------------------

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="xai-media")
        return self._pool

    def _client(self) -> MediaFetcher:
        if self._fetcher is None:
            self._fetcher = self._fetcher_factory(self.policy, self._concurrency)
        return self._fetcher


def finish_media(tally: MediaTally, *, allowed: bool, log: LogLike, where: str) -> None:
    """Log what the media step did; fail the export when media were lost and that is not allowed.

    Called after everything else is published, so stored files are kept for a re-run to re-use.
    """
    from airflow_provider_xai_batch.results.media import MediaExportError

    if tally.files or tally.failed:
        log.info(
            "media: %d files (%d bytes, %d re-used) stored under %s, %d failed",
            tally.files,
            tally.bytes,
            tally.reused,
            where,
            tally.failed,
        )
    if tally.failed:
        if not allowed:
            raise MediaExportError(tally.error_message(), tally)
        log.warning("%s", tally.error_message())


def _entry(uri: str, content_type: str, sink: MediaSink) -> Entry:
    return {"uri": uri, "content_type": content_type, "bytes": sink.size, "sha256": sink.sha256}


def _entry_at(previous: list[Entry], index: int) -> Entry | None:
    return previous[index] if index < len(previous) else None


__all__ = ["MediaStep", "finish_media"]
