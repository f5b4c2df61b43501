"""The asynchronous client: :class:`AsyncXAIBatchClient`, over ``httpx.AsyncClient``.

Same public methods as :class:`~.sync.XAIBatchClient` (``aclose`` for ``close``); listings are async
iterators. Every operation is a plan from :mod:`.plans`; this module only sends calls and sleeps,
without blocking the event loop, so hundreds of triggers can poll from one triggerer.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable
from typing import IO, TYPE_CHECKING, Any, TypeVar

import httpx

from airflow_provider_xai_batch.client import plans, protocol
from airflow_provider_xai_batch.client.base import ClientCore
from airflow_provider_xai_batch.client.models import Batch, BatchRequestMetadata, BatchResult, UploadedFile
from airflow_provider_xai_batch.client.plans import Emit, Pause, Plan, Stepper
from airflow_provider_xai_batch.client.pools import SmallPools
from airflow_provider_xai_batch.client.protocol import ApiCall

if TYPE_CHECKING:
    from typing_extensions import Unpack

T = TypeVar("T")


class AsyncXAIBatchClient(ClientCore):
    """Asynchronous client for xAI's Batch API; see :class:`~.sync.XAIBatchClient` for each method.

    >>> async def main() -> None:  # doctest: +SKIP
    ...     async with AsyncXAIBatchClient("xai-key", base_url="http://127.0.0.1:8787") as client:
    ...         batch = await client.get_batch("batch_123")
    ...         print(batch.status)
    """

    def __init__(
        self, api_key: str, *, transport: httpx.AsyncBaseTransport | None = None, **options: Any
    ) -> None:
        super().__init__(api_key, **options)
        http_options = self._http_options()
        if transport is None and self.max_connections is not None:
            # Many connections in one httpcore pool make every call walk them all: small pools.
            transport = SmallPools(self.max_connections, verify=http_options["verify"])
        self._http = httpx.AsyncClient(transport=transport, **http_options)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncXAIBatchClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- the send loop and the plan runner -------------------------------------------------------
    async def _send(self, call: ApiCall) -> httpx.Response:
        attempt, started = 0, self._monotonic()
        while True:
            pause = self._pace_delay(call)
            if pause > 0:
                await asyncio.sleep(pause)
            call.before_attempt()
            try:
                kwargs = self._request_kwargs(call, asynchronous=True)
                request = self._http.build_request(call.method, call.path, **kwargs)
                response = await self._http.send(request, stream=call.stream)
            except httpx.TransportError as exc:
                error, delay = self._retry_after_transport(call, attempt, exc, started=started)
                if delay is None:
                    raise error from None
            else:
                if response.status_code < 400:
                    return response
                if call.stream:
                    await response.aread()
                    await response.aclose()
                api_error, delay = self._retry_after_error(call, attempt, response)
                if delay is None:
                    raise api_error from None
            await asyncio.sleep(delay)
            attempt += 1

    async def _drive(self, stepper: Stepper[Any]) -> AsyncIterator[Any]:
        for step in stepper:
            if isinstance(step, Emit):
                for value in step.values:
                    yield value
            elif isinstance(step, Pause):
                await asyncio.sleep(step.seconds)
            else:
                try:
                    stepper.reply = await self._send(step)
                except Exception as exc:  # handed to the plan, which decides
                    stepper.error = exc

    async def _run(self, plan: Plan[T]) -> T:
        stepper = Stepper(plan)
        async for _ in self._drive(stepper):
            pass
        return stepper.result  # type: ignore[return-value]

    # -- batches ---------------------------------------------------------------------------------
    async def create_batch(self, name: str, *, input_file_id: str | None = None) -> Batch:
        return await self._run(plans.create_batch(self, name, input_file_id))

    async def get_batch(self, batch_id: str) -> Batch:
        return await self._run(plans.get_batch(self, batch_id))

    def iter_batches(self, *, page_size: int = 100) -> AsyncIterator[Batch]:
        return self._drive(Stepper(plans.iter_batches(self, page_size)))

    async def find_batch_by_name(self, name: str) -> Batch | None:
        return await self._run(plans.find_batch_by_name(self, name))

    async def cancel_batch(self, batch_id: str) -> Batch:
        return await self._run(plans.cancel_batch(self, batch_id))

    async def add_requests(
        self,
        batch_id: str,
        requests: Iterable[Any],
        **options: Unpack[plans.AddRequestsOptions],
    ) -> int:
        return await self._run(plans.add_requests(self, batch_id, requests, **options))

    def iter_batch_requests(
        self, batch_id: str, *, page_size: int = 1000
    ) -> AsyncIterator[BatchRequestMetadata]:
        return self._drive(Stepper(plans.iter_batch_requests(self, batch_id, page_size)))

    # -- results ---------------------------------------------------------------------------------
    def iter_results(self, batch_id: str, *, page_size: int = 1000) -> AsyncIterator[BatchResult]:
        return self._drive(Stepper(plans.iter_results(self, batch_id, page_size)))

    def iter_result_pages(self, batch_id: str, *, page_size: int = 1000) -> AsyncIterator[list[BatchResult]]:
        return self._drive(Stepper(plans.iter_result_pages(self, batch_id, page_size)))

    def iter_raw_result_pages(self, batch_id: str, *, page_size: int = 1000) -> AsyncIterator[list[Any]]:
        return self._drive(Stepper(plans.iter_raw_result_pages(self, batch_id, page_size)))

    def iter_result_page_bodies(self, batch_id: str, *, page_size: int = 1000) -> AsyncIterator[bytes]:
        return self._drive(Stepper(plans.iter_result_page_bodies(self, batch_id, page_size)))

    # -- files -----------------------------------------------------------------------------------
    async def upload_file(
        self,
        file: str | os.PathLike[str] | IO[bytes],
        *,
        filename: str | None = None,
        expires_after: int | None = None,
    ) -> UploadedFile:
        """Upload a JSONL input file, streamed from disk or an open binary file object."""
        return await self._run(plans.upload_file(self, file, filename, expires_after))

    async def get_file(self, file_id: str) -> UploadedFile:
        return await self._run(plans.get_file(self, file_id))

    async def delete_file(self, file_id: str) -> None:
        await self._run(plans.delete_file(self, file_id))

    def iter_files(self, *, page_size: int = 100) -> AsyncIterator[UploadedFile]:
        return self._drive(Stepper(plans.iter_files(self, page_size)))

    async def iter_file_content(self, file_id: str, *, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        response = await self._send(protocol.file_content_call(file_id))
        try:
            async for chunk in response.aiter_bytes(chunk_size):
                yield chunk
        finally:
            await response.aclose()
