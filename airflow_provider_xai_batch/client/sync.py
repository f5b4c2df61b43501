"""The synchronous client: :class:`XAIBatchClient`, over ``httpx.Client``."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

import httpx
import msgspec

from airflow_provider_xai_batch.client import protocol
from airflow_provider_xai_batch.client.base import (
    AmbiguousOutcomeError,
    ClientCore,
    find_named,
    log,
    upload_call,
)
from airflow_provider_xai_batch.client.models import Batch, BatchRequestMetadata, BatchResult, UploadedFile
from airflow_provider_xai_batch.client.prefetch import Prefetcher
from airflow_provider_xai_batch.client.protocol import ApiCall

_PAGE_DECODER = msgspec.json.Decoder()


class _PageToken(msgspec.Struct, gc=False):
    # Everything else in the page is skipped without building objects.
    pagination_token: str | None = None
    next_page_token: str | None = None


_TOKEN_DECODER = msgspec.json.Decoder(_PageToken)


def _release(response: httpx.Response) -> bytes:
    """The body of a read response, which is then freed as soon as it is dropped.

    An httpx response sits in a reference cycle (its stream points back at it), so only the cyclic
    garbage collector frees it. That collector seldom runs in an export, which builds few tracked
    objects, and pages of results are hundreds of KB each: without this, bodies piled up and memory
    grew with the size of the batch (about 40 MB per million results).
    """
    content = response.content
    response.stream = httpx.ByteStream(b"")
    return content


class XAIBatchClient(ClientCore):
    """Synchronous client for xAI's Batch API.

    >>> with XAIBatchClient("xai-key", base_url="http://127.0.0.1:8787") as client:  # doctest: +SKIP
    ...     batch = client.create_batch("nightly-eval")
    ...     client.add_requests(batch.batch_id, [{"custom_id": "q1", "body": {
    ...         "model": "grok-4.3", "messages": [{"role": "user", "content": "Hi"}]}}])
    ...     for result in client.iter_results(batch.batch_id):
    ...         print(result.batch_request_id, result.succeeded)
    1

    Retries 429, 5xx and connection errors with capped exponential backoff; never other 4xx.
    Paces batch creation and add calls under :class:`~.protocol.ClientLimits` on the client side.
    """

    def __init__(self, api_key: str, *, transport: httpx.BaseTransport | None = None, **options: Any) -> None:
        super().__init__(api_key, **options)
        self._http = httpx.Client(transport=transport, **self._http_options())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> XAIBatchClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the send loop ---------------------------------------------------------------------------
    def _send(
        self, call: ApiCall, *, rewind: Callable[[], object] | None = None, **extra: Any
    ) -> httpx.Response:
        attempt = 0
        while True:
            pause = self._pace_delay(call)
            if pause > 0:
                time.sleep(pause)
            if rewind is not None:
                rewind()
            try:
                response = self._http.request(call.method, call.path, **self._request_kwargs(call), **extra)
            except httpx.TransportError as exc:
                error, delay = self._retry_after_transport(call, attempt, exc)
                if delay is None:
                    raise error from None
            else:
                if response.status_code < 400:
                    return response
                api_error, delay = self._retry_after_error(call, attempt, response)
                if delay is None:
                    raise api_error from None
            time.sleep(delay)
            attempt += 1

    def _call_json(self, call: ApiCall, **extra: Any) -> Any:
        return self._json(self._send(call, **extra))

    def _iter_pages(self, path: str, key: str, page_size: int, *alternatives: str) -> Iterator[Any]:
        token: str | None = None
        while True:
            payload = self._call_json(protocol.list_call(path, page_size, token))
            items, token = protocol.parse_page(payload, key, *alternatives)
            yield from items
            if token is None:
                return

    # -- batches ---------------------------------------------------------------------------------
    def create_batch(self, name: str, *, input_file_id: str | None = None) -> Batch:
        """Create an inline batch, or a file batch from an uploaded file.

        Creating is the one call that is not safe to send twice. When its answer is lost (or a 5xx
        leaves it unclear whether it took effect), the client looks for a usable batch with this
        name before trying again, so give batches names unique to the job.
        """
        call = protocol.create_batch_call(name, input_file_id)
        for attempt in range(self.retry_policy.max_retries + 1):
            try:
                return Batch.model_validate(self._call_json(call))
            except AmbiguousOutcomeError as unclear:
                existing = self.find_batch_by_name(name)
                if existing is not None:
                    log.warning(
                        "creating batch %r had an unclear outcome; found it as %s", name, existing.batch_id
                    )
                    return existing
                delay = self.retry_policy.retry_delay(attempt)
                if delay is None:
                    raise unclear.error from None
                time.sleep(delay)
        raise AssertionError("unreachable")

    def get_batch(self, batch_id: str) -> Batch:
        """One batch, with its counters; :attr:`Batch.status` derives the status."""
        return Batch.model_validate(self._call_json(protocol.get_batch_call(batch_id)))

    def iter_batches(self, *, page_size: int = 100) -> Iterator[Batch]:
        """Every batch of the team, all pages."""
        for item in self._iter_pages(
            protocol.batches_path(), "batches", protocol.page_size(page_size), "data"
        ):
            yield Batch.model_validate(item)

    def find_batch_by_name(self, name: str) -> Batch | None:
        """A usable batch (not cancelled, failed or expired) called ``name``, if there is one."""
        return find_named(self.iter_batches(page_size=100), name)  # type: ignore[no-any-return]

    def cancel_batch(self, batch_id: str) -> Batch:
        """Cancel a batch; finished results stay readable. Cancelling twice is harmless."""
        payload = self._call_json(protocol.cancel_batch_call(batch_id))
        if isinstance(payload, dict) and "batch_id" in payload:
            return Batch.model_validate(payload)
        return self.get_batch(batch_id)

    def add_requests(
        self,
        batch_id: str,
        requests: Iterable[Any],
        *,
        source: str = "requests",
        on_call: Callable[[int], object] | None = None,
    ) -> int:
        """Add requests in any accepted shape; return how many were sent.

        ``requests`` may be a generator of millions: it is consumed lazily, packed into calls of at
        most ``limits.max_add_call_bytes`` and paced under the add-call rate limit. Every request
        gets a deterministic id, so resending a call whose answer was lost adds nothing twice.
        ``on_call`` is told the number of requests of each add call once it succeeded.
        """
        added = 0
        # Packing the next call overlaps with sending this one; at most one extra call is held.
        with Prefetcher(self._add_calls(batch_id, requests, source)) as calls:
            for call, count in calls:
                self._send(call)
                call.discard_body()
                added += count
                if on_call is not None:
                    on_call(count)
        return added

    def iter_batch_requests(self, batch_id: str, *, page_size: int = 1000) -> Iterator[BatchRequestMetadata]:
        """Per-request metadata (state, model, endpoint), all pages."""
        path = protocol.batch_requests_path(batch_id)
        for item in self._iter_pages(path, "batch_request_metadata", protocol.page_size(page_size)):
            yield BatchRequestMetadata.model_validate(item)

    def iter_results(self, batch_id: str, *, page_size: int = 1000) -> Iterator[BatchResult]:
        """Results of finished requests, all pages, sorted by request id (correlate by id)."""
        for page in self.iter_result_pages(batch_id, page_size=page_size):
            yield from page

    def iter_result_pages(self, batch_id: str, *, page_size: int = 1000) -> Iterator[list[BatchResult]]:
        """Results one page at a time, for writers that handle a page as a unit."""
        for items in self.iter_raw_result_pages(batch_id, page_size=page_size):
            yield [BatchResult.model_validate(item) for item in items]

    def iter_raw_result_pages(self, batch_id: str, *, page_size: int = 1000) -> Iterator[list[Any]]:
        """Result pages as the service sent them (decoded JSON, not validated), for bulk writers.

        Validating a million rows into models costs more than writing them; callers that only copy
        results elsewhere read the plain dicts and fall back to :class:`BatchResult` for odd shapes.
        """
        path = protocol.results_path(batch_id)
        token: str | None = None
        while True:
            response = self._send(protocol.list_call(path, protocol.page_size(page_size), token))
            items, token = protocol.parse_page(self._page_json(response), "results")
            _release(response)
            yield items
            if token is None:
                return

    def iter_result_page_bodies(self, batch_id: str, *, page_size: int = 1000) -> Iterator[bytes]:
        """Result pages as the JSON bodies the service sent (``{"results": [...], ...}``), undecoded.

        For writers that decode rows their own way: a typed decoder that leaves each response
        payload as raw JSON builds no Python objects for it, which is most of the cost of a page.
        Only the page token is read here.
        """
        path = protocol.results_path(batch_id)
        token: str | None = None
        while True:
            response = self._send(protocol.list_call(path, protocol.page_size(page_size), token))
            token = self._page_token(response)
            yield _release(response)
            if token is None:
                return

    def _page_token(self, response: httpx.Response) -> str | None:
        try:
            page = _TOKEN_DECODER.decode(response.content)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return protocol.parse_page(self._page_json(response), "results")[1]
        return page.pagination_token or page.next_page_token or None

    def _page_json(self, response: httpx.Response) -> Any:
        # Result pages are the bulk of what an export reads; msgspec decodes them twice as fast.
        # Anything it will not take (e.g. integers beyond 64 bits) goes the usual way.
        try:
            return _PAGE_DECODER.decode(response.content) if response.content else {}
        except msgspec.DecodeError:
            return self._json(response)

    # -- files -----------------------------------------------------------------------------------
    def upload_file(
        self,
        file: str | os.PathLike[str] | IO[bytes],
        *,
        filename: str | None = None,
        expires_after: int | None = None,
    ) -> UploadedFile:
        """Upload a JSONL input file, streamed from disk or an open binary file object."""
        if isinstance(file, (str, os.PathLike)):
            with open(file, "rb") as handle:
                return self.upload_file(
                    handle,
                    filename=filename or os.path.basename(os.fspath(file)),
                    expires_after=expires_after,
                )
        call, extra = upload_call(file, filename, expires_after)
        return UploadedFile.model_validate(self._call_json(call, **extra))

    def get_file(self, file_id: str) -> UploadedFile:
        return UploadedFile.model_validate(self._call_json(ApiCall("GET", protocol.file_path(file_id))))

    def delete_file(self, file_id: str) -> None:
        self._send(ApiCall("DELETE", protocol.file_path(file_id)))

    def iter_files(self, *, page_size: int = 100) -> Iterator[UploadedFile]:
        for item in self._iter_pages("/v1/files", "data", protocol.page_size(page_size), "files"):
            yield UploadedFile.model_validate(item)

    def iter_file_content(self, file_id: str, *, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Stream a file's bytes."""
        with self._http.stream("GET", protocol.file_path(file_id) + "/content") as response:
            if response.status_code >= 400:
                response.read()
                error, _ = self._retry_after_error(
                    ApiCall("GET", "/v1/files/content"), self.retry_policy.max_retries, response
                )
                raise error
            yield from response.iter_bytes(chunk_size)
