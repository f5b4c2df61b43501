"""The synchronous client: :class:`XAIBatchClient`, over ``httpx.Client``.

Every operation is a plan from :mod:`.plans`; this module only sends calls and sleeps.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any, TypeVar

import httpx

from airflow_provider_xai_batch.client import plans, protocol
from airflow_provider_xai_batch.client.base import ClientCore
from airflow_provider_xai_batch.client.models import Batch, BatchRequestMetadata, BatchResult, UploadedFile
from airflow_provider_xai_batch.client.plans import Emit, Pause, Plan, Stepper
from airflow_provider_xai_batch.client.protocol import ApiCall

if TYPE_CHECKING:
    from typing_extensions import Unpack

T = TypeVar("T")


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
    Paces batch creation and add calls under :class:`~.policy.ClientLimits` on the client side.
    """

    # Packing the next add call overlaps with sending this one; at most one extra call is held.
    prefetch_add_calls = True

    def __init__(self, api_key: str, *, transport: httpx.BaseTransport | None = None, **options: Any) -> None:
        super().__init__(api_key, **options)
        self._http = httpx.Client(transport=transport, **self._http_options())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> XAIBatchClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the send loop and the plan runner -------------------------------------------------------
    def _send(self, call: ApiCall) -> httpx.Response:
        attempt, started = 0, self._monotonic()
        while True:
            pause = self._pace_delay(call)
            if pause > 0:
                time.sleep(pause)
            call.before_attempt()
            try:
                request = self._http.build_request(call.method, call.path, **self._request_kwargs(call))
                response = self._http.send(request, stream=call.stream)
            except httpx.TransportError as exc:
                error, delay = self._retry_after_transport(call, attempt, exc, started=started)
                if delay is None:
                    raise error from None
            else:
                if response.status_code < 400:
                    return response
                if call.stream:
                    response.read()
                    response.close()
                api_error, delay = self._retry_after_error(call, attempt, response)
                if delay is None:
                    raise api_error from None
            time.sleep(delay)
            attempt += 1

    def _drive(self, stepper: Stepper[Any]) -> Iterator[Any]:
        for step in stepper:
            if isinstance(step, Emit):
                yield from step.values
            elif isinstance(step, Pause):
                time.sleep(step.seconds)
            else:
                try:
                    stepper.reply = self._send(step)
                except Exception as exc:  # handed to the plan, which decides
                    stepper.error = exc

    def _run(self, plan: Plan[T]) -> T:
        stepper = Stepper(plan)
        for _ in self._drive(stepper):
            pass
        return stepper.result  # type: ignore[return-value]

    # -- batches ---------------------------------------------------------------------------------
    def create_batch(self, name: str, *, input_file_id: str | None = None) -> Batch:
        """Create an inline batch, or a file batch from an uploaded file.

        Creating is the one call that is not safe to send twice. When its answer is lost (or a 5xx
        leaves it unclear whether it took effect), the client looks for a usable batch with this
        name before trying again, so give batches names unique to the job.
        """
        return self._run(plans.create_batch(self, name, input_file_id))

    def get_batch(self, batch_id: str) -> Batch:
        """One batch, with its counters; :attr:`Batch.status` derives the status."""
        return self._run(plans.get_batch(self, batch_id))

    def iter_batches(self, *, page_size: int = 100) -> Iterator[Batch]:
        """Every batch of the team, all pages."""
        return self._drive(Stepper(plans.iter_batches(self, page_size)))

    def find_batch_by_name(self, name: str) -> Batch | None:
        """A reusable batch (not cancelled, failed or expired) called ``name``, if there is one."""
        return self._run(plans.find_batch_by_name(self, name))

    def cancel_batch(self, batch_id: str) -> Batch:
        """Cancel a batch; finished results stay readable. Cancelling twice is harmless."""
        return self._run(plans.cancel_batch(self, batch_id))

    def add_requests(
        self,
        batch_id: str,
        requests: Iterable[Any],
        **options: Unpack[plans.AddRequestsOptions],
    ) -> int:
        """Add requests in any accepted shape; return how many distinct requests were added.

        ``requests`` may be a generator of millions: it is consumed lazily, packed into calls of at
        most ``limits.max_add_call_bytes`` and paced under the add-call rate limit. Every request
        gets a deterministic id, so resending a call whose answer was lost adds nothing twice, and
        an identical repeat in the input (same id, same content) counts once, as the batch holds it
        once. Items may be :class:`~.located.LocatedRequest` so errors name their file and line.

        When the service rejects a call as a whole (400, 412), the call is split until the request
        at fault is found; the error names its id, source and position. Requests before it stay
        added, none after it are sent. ``on_call`` is told the number of requests of each add call
        once the service accepted it.
        """
        return self._run(plans.add_requests(self, batch_id, requests, **options))

    def iter_batch_requests(self, batch_id: str, *, page_size: int = 1000) -> Iterator[BatchRequestMetadata]:
        """Per-request metadata (state, model, endpoint), all pages."""
        return self._drive(Stepper(plans.iter_batch_requests(self, batch_id, page_size)))

    # -- results ---------------------------------------------------------------------------------
    def iter_results(self, batch_id: str, *, page_size: int = 1000) -> Iterator[BatchResult]:
        """Results of finished requests, all pages, sorted by request id (correlate by id)."""
        return self._drive(Stepper(plans.iter_results(self, batch_id, page_size)))

    def iter_result_pages(self, batch_id: str, *, page_size: int = 1000) -> Iterator[list[BatchResult]]:
        """Results one page at a time, for writers that handle a page as a unit."""
        return self._drive(Stepper(plans.iter_result_pages(self, batch_id, page_size)))

    def iter_raw_result_pages(self, batch_id: str, *, page_size: int = 1000) -> Iterator[list[Any]]:
        """Result pages as the service sent them (decoded JSON, not validated), for bulk writers.

        Validating a million rows into models costs more than writing them; callers that only copy
        results elsewhere read the plain dicts and fall back to :class:`BatchResult` for odd shapes.
        """
        return self._drive(Stepper(plans.iter_raw_result_pages(self, batch_id, page_size)))

    def iter_result_page_bodies(self, batch_id: str, *, page_size: int = 1000) -> Iterator[bytes]:
        """Result pages as the JSON bodies the service sent (``{"results": [...], ...}``), undecoded.

        For writers that decode rows their own way: a typed decoder that leaves each response
        payload as raw JSON builds no Python objects for it, which is most of the cost of a page.
        Only the page token is read here.
        """
        return self._drive(Stepper(plans.iter_result_page_bodies(self, batch_id, page_size)))

    # -- files -----------------------------------------------------------------------------------
    def upload_file(
        self,
        file: str | os.PathLike[str] | IO[bytes],
        *,
        filename: str | None = None,
        expires_after: int | None = None,
    ) -> UploadedFile:
        """Upload a JSONL input file, streamed from disk or an open binary file object."""
        return self._run(plans.upload_file(self, file, filename, expires_after))

    def get_file(self, file_id: str) -> UploadedFile:
        return self._run(plans.get_file(self, file_id))

    def delete_file(self, file_id: str) -> None:
        self._run(plans.delete_file(self, file_id))

    def iter_files(self, *, page_size: int = 100) -> Iterator[UploadedFile]:
        return self._drive(Stepper(plans.iter_files(self, page_size)))

    def iter_file_content(self, file_id: str, *, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Stream a file's bytes (reaching the file is retried like any read)."""
        response = self._send(protocol.file_content_call(file_id))
        try:
            yield from response.iter_bytes(chunk_size)
        finally:
            response.close()
