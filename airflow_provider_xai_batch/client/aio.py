"""The asynchronous client: :class:`AsyncXAIBatchClient`, over ``httpx.AsyncClient``.

Same method names as :class:`~.sync.XAIBatchClient`; listings are async iterators. Nothing here
blocks the event loop, so hundreds of triggers can poll from one triggerer.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterable
from typing import IO, Any

import httpx

from airflow_provider_xai_batch.client import protocol
from airflow_provider_xai_batch.client.base import (
    AmbiguousOutcomeError,
    ClientCore,
    find_named,
    log,
    upload_call,
)
from airflow_provider_xai_batch.client.models import Batch, BatchRequestMetadata, BatchResult, UploadedFile
from airflow_provider_xai_batch.client.protocol import ApiCall


class AsyncXAIBatchClient(ClientCore):
    """Asynchronous client for xAI's Batch API.

    >>> async def main() -> None:  # doctest: +SKIP
    ...     async with AsyncXAIBatchClient("xai-key", base_url="http://127.0.0.1:8787") as client:
    ...         batch = await client.get_batch("batch_123")
    ...         print(batch.status)
    """

    def __init__(
        self, api_key: str, *, transport: httpx.AsyncBaseTransport | None = None, **options: Any
    ) -> None:
        super().__init__(api_key, **options)
        self._http = httpx.AsyncClient(transport=transport, **self._http_options())

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncXAIBatchClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- the send loop ---------------------------------------------------------------------------
    async def _send(
        self, call: ApiCall, *, rewind: Callable[[], object] | None = None, **extra: Any
    ) -> httpx.Response:
        attempt = 0
        while True:
            pause = self._pace_delay(call)
            if pause > 0:
                await asyncio.sleep(pause)
            if rewind is not None:
                rewind()
            try:
                response = await self._http.request(
                    call.method, call.path, **self._request_kwargs(call, asynchronous=True), **extra
                )
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
            await asyncio.sleep(delay)
            attempt += 1

    async def _call_json(self, call: ApiCall, **extra: Any) -> Any:
        return self._json(await self._send(call, **extra))

    async def _iter_pages(
        self, path: str, key: str, page_size: int, *alternatives: str
    ) -> AsyncIterator[Any]:
        token: str | None = None
        while True:
            payload = await self._call_json(protocol.list_call(path, page_size, token))
            items, token = protocol.parse_page(payload, key, *alternatives)
            for item in items:
                yield item
            if token is None:
                return

    # -- batches ---------------------------------------------------------------------------------
    async def create_batch(self, name: str, *, input_file_id: str | None = None) -> Batch:
        """Create a batch; on an unclear outcome, look for it by name before trying again."""
        call = protocol.create_batch_call(name, input_file_id)
        for attempt in range(self.retry_policy.max_retries + 1):
            try:
                return Batch.model_validate(await self._call_json(call))
            except AmbiguousOutcomeError as unclear:
                existing = await self.find_batch_by_name(name)
                if existing is not None:
                    log.warning(
                        "creating batch %r had an unclear outcome; found it as %s", name, existing.batch_id
                    )
                    return existing
                delay = self.retry_policy.retry_delay(attempt)
                if delay is None:
                    raise unclear.error from None
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def get_batch(self, batch_id: str) -> Batch:
        return Batch.model_validate(await self._call_json(protocol.get_batch_call(batch_id)))

    async def iter_batches(self, *, page_size: int = 100) -> AsyncIterator[Batch]:
        async for item in self._iter_pages(
            protocol.batches_path(), "batches", protocol.page_size(page_size), "data"
        ):
            yield Batch.model_validate(item)

    async def find_batch_by_name(self, name: str) -> Batch | None:
        return find_named([batch async for batch in self.iter_batches(page_size=100)], name)  # type: ignore[no-any-return]

    async def cancel_batch(self, batch_id: str) -> Batch:
        payload = await self._call_json(protocol.cancel_batch_call(batch_id))
        if isinstance(payload, dict) and "batch_id" in payload:
            return Batch.model_validate(payload)
        return await self.get_batch(batch_id)

    async def add_requests(self, batch_id: str, requests: Iterable[Any], *, source: str = "requests") -> int:
        """Add requests in any accepted shape (lazily packed and paced); return how many were sent."""
        added = 0
        for call, count in self._add_calls(batch_id, requests, source):
            await self._send(call)
            call.discard_body()
            added += count
        return added

    async def iter_batch_requests(
        self, batch_id: str, *, page_size: int = 1000
    ) -> AsyncIterator[BatchRequestMetadata]:
        path = protocol.batch_requests_path(batch_id)
        async for item in self._iter_pages(path, "batch_request_metadata", protocol.page_size(page_size)):
            yield BatchRequestMetadata.model_validate(item)

    async def iter_results(self, batch_id: str, *, page_size: int = 1000) -> AsyncIterator[BatchResult]:
        async for item in self._iter_pages(
            protocol.results_path(batch_id), "results", protocol.page_size(page_size)
        ):
            yield BatchResult.model_validate(item)

    # -- files -----------------------------------------------------------------------------------
    async def upload_file(
        self,
        file: str | os.PathLike[str] | IO[bytes],
        *,
        filename: str | None = None,
        expires_after: int | None = None,
    ) -> UploadedFile:
        if isinstance(file, (str, os.PathLike)):
            with open(file, "rb") as handle:
                return await self.upload_file(
                    handle,
                    filename=filename or os.path.basename(os.fspath(file)),
                    expires_after=expires_after,
                )
        call, extra = upload_call(file, filename, expires_after)
        return UploadedFile.model_validate(await self._call_json(call, **extra))

    async def get_file(self, file_id: str) -> UploadedFile:
        return UploadedFile.model_validate(await self._call_json(ApiCall("GET", protocol.file_path(file_id))))

    async def delete_file(self, file_id: str) -> None:
        await self._send(ApiCall("DELETE", protocol.file_path(file_id)))

    async def iter_files(self, *, page_size: int = 100) -> AsyncIterator[UploadedFile]:
        async for item in self._iter_pages("/v1/files", "data", protocol.page_size(page_size), "files"):
            yield UploadedFile.model_validate(item)
