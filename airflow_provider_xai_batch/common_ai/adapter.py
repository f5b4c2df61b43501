"""common-ai's ``BatchAdapter`` for xAI: ``model_id="xai:<model>"`` in ``LLMBatchOperator`` / ``@task.llm_batch``.

Registered under the entry-point group ``airflow.providers.common.ai.batch_adapters`` as ``xai``;
common-ai builds it from the connection's password (the API key) and host (the base URL) only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.ai.batch.base import (
    BatchAdapter,
    BatchState,
    ExtractedOutput,
    RawResultItem,
    SubmitResult,
)
from airflow.providers.common.ai.exceptions import LLMBatchLimitExceededError

from airflow_provider_xai_batch.client import Batch, XAIBatchClient
from airflow_provider_xai_batch.client.inputs import encode_request
from airflow_provider_xai_batch.client.policy import ClientLimits
from airflow_provider_xai_batch.common_ai import translate
from airflow_provider_xai_batch.hooks.xai import API_KEY_ENV, base_url_of

if TYPE_CHECKING:
    from airflow.providers.common.ai.batch.base import BatchRequest
    from airflow.providers.common.ai.batch.output_schema import OutputSpec

log = logging.getLogger(__name__)

# A pydantic-ai connection for xAI names the OpenAI-compatible root; batches live beside it.
_OPENAI_COMPATIBLE_SUFFIX = "/v1"


def _batch_base_url(host: str | None) -> str:
    url = base_url_of(host)
    return url[: -len(_OPENAI_COMPATIBLE_SUFFIX)] if url.endswith(_OPENAI_COMPATIBLE_SUFFIX) else url


def _created(batch: Batch) -> datetime:
    return batch.create_time or datetime.min.replace(tzinfo=timezone.utc)


class XAIBatchAdapter(BatchAdapter):
    """Runs common-ai batches on xAI's Batch API through this provider's client.

    The prompts go in as one inline xAI batch: created, then filled by add calls packed under the
    size cap and paced under the rate limit, every request with the deterministic id
    ``{key}-{index}``, so re-sending is a no-op on the service. The batch is named
    ``llm-batch-{key}-{fingerprint}-{count}`` (see :mod:`.translate`) because xAI keeps no batch
    metadata: that name is what :meth:`find_orphaned_batch` and :meth:`submit` look for when a
    try crashed before common-ai recorded the batch id.

    :param api_key: The connection's password; ``None`` falls back to ``XAI_API_KEY``.
    :param base_url: The connection's host; ``None`` falls back to ``XAI_BASE_URL``, then
        ``https://api.x.ai``. A trailing ``/v1`` (an OpenAI-compatible root) is dropped.
    :param client: An :class:`~airflow_provider_xai_batch.client.XAIBatchClient` to use instead.

    >>> adapter = XAIBatchAdapter(api_key="xai-...", base_url="http://127.0.0.1:8787")  # doctest: +SKIP
    >>> adapter.get_batch("batch_123").status  # doctest: +SKIP
    'in_progress'
    """

    name = "xai"
    conn_types: ClassVar[frozenset[str]] = frozenset({"xai", "pydanticai"})
    # No per-batch cap on xAI; above a million requests it may throttle, and common-ai holds the
    # whole list in the worker's memory anyway.
    max_requests = 1_000_000
    # xAI limits each request, not the batch: this is checked per request, by the rule every input
    # check of the package uses (a request must also fit alone in an add call).
    max_payload_bytes = ClientLimits().largest_request_bytes
    allows_per_request_model = True

    def __init__(
        self, *, api_key: str | None = None, base_url: str | None = None, client: Any | None = None
    ) -> None:
        if client is None:
            client = XAIBatchClient(
                api_key or os.environ.get(API_KEY_ENV, ""), base_url=_batch_base_url(base_url)
            )
        self._client: XAIBatchClient = client

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(base_url={self._client.base_url!r})"

    # -- building requests -----------------------------------------------------------------------
    def build_output_directive(self, spec: OutputSpec) -> dict[str, Any]:
        if not spec.is_structured:
            return {}
        return translate.structured_output_directive(spec.schema_name, spec.json_schema)

    def _native_requests(
        self,
        requests: list[BatchRequest],
        *,
        model: str,
        idempotency_key: str,
        output_spec: OutputSpec,
        system_prompt: str = "",
        max_tokens: int = 1024,
        request_params: dict[str, Any] | None = None,
        **ignored: Any,
    ) -> Iterator[dict[str, Any]]:
        # The one place the shaping keywords of validate_requests() and submit() are declared, with
        # their defaults; both pass theirs through. Other keywords (completion_window) are OpenAI's.
        directive = self.build_output_directive(output_spec)  # now: a bad schema fails before sending

        def bodies() -> Iterator[dict[str, Any]]:
            # A generator: the client packs and sends while this builds, never holding every body.
            for index, request in enumerate(requests):
                body = translate.chat_body(
                    prompt=request["prompt"],
                    model=self.resolve_request_model(
                        request.get("model"), default_bare_model=model, request_index=index
                    ),
                    system_prompt=request.get("system_prompt") or system_prompt,
                    max_tokens=request.get("max_tokens") or max_tokens,
                    params={**(request_params or {}), **(request.get("params") or {})},
                    directive=directive,
                )
                yield translate.native_request(idempotency_key, index, body)

        return bodies()

    def validate_requests(
        self,
        requests: list[BatchRequest],
        *,
        model: str,
        output_spec: OutputSpec,
        idempotency_key: str,
        **kwargs: Any,
    ) -> None:
        self.check_custom_id_length(idempotency_key, len(requests))
        if len(requests) > self.max_requests:
            raise LLMBatchLimitExceededError(
                f"xAI batches may be throttled above {self.max_requests} requests; got {len(requests)}. "
                "Split the input across mapped task instances with .expand()."
            )
        limit = self._client.limits.largest_request_bytes
        built = self._native_requests(
            requests, model=model, idempotency_key=idempotency_key, output_spec=output_spec, **kwargs
        )
        for index, request in enumerate(built):
            size = len(encode_request(request))
            if size > limit:
                raise LLMBatchLimitExceededError(
                    f"Request {index} is {size} bytes; xAI accepts at most {limit} bytes per request. "
                    "Shorten the prompt (a large output_type schema is repeated in every request)."
                )

    # -- submitting ------------------------------------------------------------------------------
    def submit(
        self,
        requests: list[BatchRequest],
        *,
        model: str,
        idempotency_key: str,
        input_fingerprint: str,
        output_spec: OutputSpec,
        **kwargs: Any,
    ) -> SubmitResult:
        """Create the named batch (or re-use the one a crashed try left) and add every request.

        Creating and filling an inline batch are separate calls. A try that died between them
        leaves a batch holding part of the input under this name; submitting again fills that
        same batch (the requests already there are no-ops) instead of paying for a second one.
        ``completion_window`` and other OpenAI-only options are ignored: xAI has none.
        """
        name = translate.batch_name(idempotency_key, input_fingerprint, len(requests))
        batch = self._client.find_batch_by_name(name)
        if batch is None:
            batch = self._client.create_batch(name)
        else:
            log.warning("Found batch %s named %s from an earlier try; filling it", batch.batch_id, name)
        added = self._client.add_requests(
            batch.batch_id,
            self._native_requests(
                requests, model=model, idempotency_key=idempotency_key, output_spec=output_spec, **kwargs
            ),
            source=name,
        )
        log.info("Batch %s holds %d requests", batch.batch_id, added)
        return SubmitResult(batch_id=batch.batch_id, provider_input_ref=None)

    def find_orphaned_batch(
        self, idempotency_key: str, input_fingerprint: str, not_before: str
    ) -> str | None:
        """The batch an earlier try created and filled completely, found by its name.

        Matches the key, the fingerprint and the request count the name carries, skips batches
        that are cancelled, failed or expired, and those created before ``not_before`` (xAI
        reports creation dates only, so the comparison is by day). A batch only partly filled is
        not returned: common-ai then submits again, and :meth:`submit` completes that same batch.
        """
        when = datetime.fromisoformat(not_before) if not_before else None
        wanted = (idempotency_key, input_fingerprint[: translate.FINGERPRINT_CHARS])
        best = None
        for batch in self._client.iter_batches():
            identity = translate.parse_batch_name(batch.name)
            if identity is None or (identity.key16, identity.fingerprint16) != wanted:
                continue
            if not translate.usable_for(batch, identity, not_before=when):
                continue
            if best is None or _created(batch) > _created(best):
                best = batch
        return best.batch_id if best is not None else None

    # -- waiting ---------------------------------------------------------------------------------
    def get_batch(self, batch_id: str) -> BatchState:
        batch = self._client.get_batch(batch_id)
        return BatchState(
            status=translate.status_of(batch),  # type: ignore[arg-type]
            counts=translate.counts_of(batch),
            error_message=batch.cancel_by_xai_message,
        )

    def cancel_batch(self, batch_id: str) -> None:
        self._client.cancel_batch(batch_id)

    # -- results ---------------------------------------------------------------------------------
    def iter_results(self, batch_id: str) -> Iterator[RawResultItem]:
        # The first page is read here, so an unknown batch id raises at the call, not on iteration.
        pages = self._client.iter_result_pages(batch_id)
        first = next(pages, [])
        return self._raw_items(batch_id, first, pages)

    def _raw_items(
        self, batch_id: str, first: list[Any], pages: Iterator[list[Any]]
    ) -> Iterator[RawResultItem]:
        yield from self._page_items(batch_id, first)
        for page in pages:
            yield from self._page_items(batch_id, page)

    @staticmethod
    def _page_items(batch_id: str, page: list[Any]) -> Iterator[RawResultItem]:
        for result in page:
            try:
                index = translate.index_of(result.batch_request_id)
            except ValueError:
                # Not one of ours (added to the batch by hand): common-ai cannot join it to an input.
                log.warning("Skipping result %s of batch %s", result.batch_request_id, batch_id)
                continue
            outcome = translate.chat_outcome(result)
            error = None
            if outcome.error is not None:
                error = {
                    "type": "provider_error" if outcome.status == "errored" else outcome.status,
                    "message": outcome.error,
                    "provider_code": None,
                    "stage": "provider",
                }
            yield RawResultItem(
                custom_id=result.batch_request_id,
                index=index,
                provider_status=outcome.status,  # type: ignore[arg-type]
                model=outcome.model,
                usage=outcome.usage,
                finish_reason=outcome.finish_reason,
                error=error,
                raw=outcome.content,
            )

    def extract_output(self, raw: RawResultItem, spec: OutputSpec) -> ExtractedOutput:
        if raw.raw is None:
            return ExtractedOutput(kind="absent")
        return ExtractedOutput(kind="json_text" if spec.is_structured else "text", text=raw.raw)
