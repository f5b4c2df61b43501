"""What the sync and async clients share: configuration, pacing, encoding and answer handling.

Only the send loop differs between :mod:`.sync` and :mod:`.aio` (``await`` or not), as in httpx's
own ``BaseClient``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

import httpx

from airflow_provider_xai_batch.client import protocol
from airflow_provider_xai_batch.client.errors import (
    XAIAPIError,
    XAIConnectionError,
    XAIInputError,
    error_from_response,
    scrub,
)
from airflow_provider_xai_batch.client.inputs import check_request_size, encode_request, normalise_requests
from airflow_provider_xai_batch.client.pacing import SharedWindowPacer
from airflow_provider_xai_batch.client.protocol import (
    ApiCall,
    ClientLimits,
    RetryPolicy,
    SlidingWindowLimiter,
)

log = logging.getLogger("airflow_provider_xai_batch.client")

DEFAULT_TIMEOUT = 120.0
FIRST_ADD_CALL_BYTES = 1_000_000
USER_AGENT = "airflow-provider-xai-batch"

# Errors raised before a single byte reached the service: resending cannot duplicate anything.
NOT_SENT_ERRORS: tuple[type[Exception], ...] = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def shared_ssl_context() -> ssl.SSLContext:
    """The verifying TLS context every client of this process uses, built once per CA setting.

    httpx builds a new context for each client, and loading the CA bundle into it costs 40-50 ms
    of CPU. A triggerer that starts hundreds of waits would pay that on its event loop for every
    client it builds. The result is what httpx would build: ``SSL_CERT_FILE`` or ``SSL_CERT_DIR``
    when set, else certifi's bundle.

    >>> shared_ssl_context() is shared_ssl_context()
    True
    """
    return _ssl_context(os.environ.get("SSL_CERT_FILE") or None, os.environ.get("SSL_CERT_DIR") or None)


@functools.lru_cache(maxsize=4)
def _ssl_context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    if cafile:
        return ssl.create_default_context(cafile=cafile)
    if capath:
        return ssl.create_default_context(capath=capath)
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


class AmbiguousOutcomeError(Exception):
    """A call that must not be sent twice failed after it may have been applied."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class ClientCore:
    """Configuration and pure-ish helpers shared by :class:`XAIBatchClient` and :class:`AsyncXAIBatchClient`."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = protocol.DEFAULT_BASE_URL,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        limits: ClientLimits | None = None,
        retry_policy: RetryPolicy | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not api_key:
            raise XAIInputError(
                "no API key given (set the connection's password or XAI_API_KEY)", source="connection"
            )
        self._api_key = api_key
        self.base_url = (base_url or protocol.DEFAULT_BASE_URL).rstrip("/")
        self.timeout = timeout
        self.limits = limits or ClientLimits()
        self.retry_policy = retry_policy or RetryPolicy()
        if max_retries is not None:
            self.retry_policy.max_retries = max_retries
        self._monotonic = monotonic
        self._limiters: dict[str, SlidingWindowLimiter | SharedWindowPacer] = {}
        if self.limits.create_calls:
            self._limiters["create"] = SlidingWindowLimiter(
                self.limits.create_calls, self.limits.create_window_seconds
            )
        if self.limits.add_calls:
            # The add limit is the team's, shared with every worker adding at the same time.
            self._limiters["add"] = SharedWindowPacer(self.limits.add_calls, self.limits.add_window_seconds)
        self._limiter_lock = threading.Lock()

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def _http_options(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "timeout": httpx.Timeout(self.timeout, connect=min(self.timeout, 15.0)),
            "headers": {
                "Authorization": f"Bearer {self._api_key}",
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
            },
            "follow_redirects": False,
            "verify": shared_ssl_context(),
        }

    def _pace_delay(self, call: ApiCall) -> float:
        limiter = self._limiters.get(call.pace) if call.pace else None
        if limiter is None:
            return 0.0
        with self._limiter_lock:
            return limiter.reserve(self._monotonic())

    def _throttled(self, call: ApiCall) -> None:
        limiter = self._limiters.get(call.pace) if call.pace else None
        if isinstance(limiter, SharedWindowPacer):
            with self._limiter_lock:
                limiter.throttled(self._monotonic())

    def _request_kwargs(self, call: ApiCall, *, asynchronous: bool = False) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"params": call.params}
        if isinstance(call.content, protocol.BodyChunks):
            # An explicit length keeps httpx from switching to chunked transfer encoding.
            kwargs["content"] = call.content.for_async() if asynchronous else call.content
            kwargs["headers"] = {"Content-Type": "application/json", "Content-Length": str(call.content.size)}
        elif call.content is not None:
            kwargs["content"] = call.content
            kwargs["headers"] = {"Content-Type": "application/json"}
        elif call.json is not None:
            kwargs["json"] = call.json
        return kwargs

    def _retry_after_error(
        self, call: ApiCall, attempt: int, response: httpx.Response
    ) -> tuple[XAIAPIError, float | None]:
        error = error_from_response(
            response.status_code,
            response.content,
            retry_after=response.headers.get("Retry-After"),
            secret=self._api_key,
        )
        if response.status_code == 429:
            self._throttled(call)
        retry_after = getattr(error, "retry_after", None)
        delay = self.retry_policy.retry_delay(
            attempt, status_code=response.status_code, retry_after=retry_after
        )
        if delay is not None and not call.resend_safe and response.status_code >= 500:
            # A 5xx may come after the call took effect: only the caller can tell whether to resend.
            raise AmbiguousOutcomeError(error)
        if delay is not None:
            log.warning(
                "%s answered %s (%s); retry %d of %d in %.1fs",
                call.label,
                response.status_code,
                error.message[:200],
                attempt + 1,
                self.retry_policy.max_retries,
                delay,
            )
        return error, delay

    def _retry_after_transport(
        self, call: ApiCall, attempt: int, exc: Exception
    ) -> tuple[XAIConnectionError, float | None]:
        error = XAIConnectionError(
            f"{call.label} failed: {type(exc).__name__}: {scrub(str(exc), self._api_key)}"
        )
        delay = self.retry_policy.retry_delay(attempt)
        if delay is not None and not call.resend_safe and not isinstance(exc, NOT_SENT_ERRORS):
            raise AmbiguousOutcomeError(error)
        if delay is not None:
            log.warning(
                "%s failed (%s); retry %d of %d in %.1fs",
                call.label,
                type(exc).__name__,
                attempt + 1,
                self.retry_policy.max_retries,
                delay,
            )
        return error, delay

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        if not response.content:
            return {}
        try:
            return response.json()
        except (ValueError, json.JSONDecodeError):
            return {}

    def _encoded_requests(self, requests: Iterable[Any], source: str) -> Iterator[tuple[str, bytes]]:
        """Normalise, size-check and encode each request, lazily."""
        limit = self.limits.max_request_bytes
        for index, request in enumerate(normalise_requests(requests, source=source)):
            encoded = encode_request(request)
            check_request_size(request, encoded, limit, source=source, position=f"item {index}")
            yield request["batch_request_id"], encoded

    def _add_calls(
        self, batch_id: str, requests: Iterable[Any], source: str
    ) -> Iterator[tuple[ApiCall, int]]:
        packed = protocol.pack_add_calls(
            self._encoded_requests(requests, source),
            max_body_bytes=self.limits.max_add_call_bytes,
            max_requests=self.limits.max_requests_per_call,
            # Packing 25 MB takes about half a second; a small first call gets the service working
            # on it meanwhile instead of waiting (the calls double from there).
            first_body_bytes=FIRST_ADD_CALL_BYTES,
        )
        # ``map`` keeps no reference to the call it handed out, so a sent call's 25 MB can be freed.
        return map(lambda call: (protocol.add_requests_call(batch_id, call), call.count), packed)


def upload_call(
    file: IO[bytes], filename: str | None, expires_after: int | None
) -> tuple[ApiCall, dict[str, Any]]:
    """The multipart upload of an open binary file: the call and the httpx arguments to send it with.

    httpx writes form fields before files, as the service requires for ``expires_after``. A
    seekable file is rewound before each attempt, so the upload may be retried; others may not.
    """
    name = filename or os.path.basename(str(getattr(file, "name", "batch.jsonl"))) or "batch.jsonl"
    data = {"expires_after": str(expires_after)} if expires_after is not None else {}
    seekable = file.seekable() if hasattr(file, "seekable") else False
    start = file.tell() if seekable else 0
    extra: dict[str, Any] = {"data": data, "files": {"file": (name, file, "application/jsonl")}}
    if seekable:
        extra["rewind"] = lambda: file.seek(start)
    return ApiCall("POST", "/v1/files", resend_safe=seekable), extra


def find_named(batches: Iterable[Any], name: str) -> Any:
    """The first batch called ``name`` that is still usable (not cancelled, failed or expired)."""
    for batch in batches:
        if batch.name == name and batch.status.value not in {"cancelled", "failed", "expired"}:
            return batch
    return None
