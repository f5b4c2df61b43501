"""What the sync and async clients share: configuration, pacing, encoding and answer handling.

Together with the operations in :mod:`.plans`, this is everything but I/O: only the send loop and
the plan runner differ between :mod:`.sync` and :mod:`.aio` (``await`` or not), as in httpx's own
``BaseClient``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import re
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import httpx
import msgspec

from airflow_provider_xai_batch.client import protocol
from airflow_provider_xai_batch.client.api_key import clean_api_key
from airflow_provider_xai_batch.client.errors import (
    XAIAPIError,
    XAIConnectionError,
    XAIInputError,
    error_from_response,
    scrub,
)
from airflow_provider_xai_batch.client.inputs import (
    NormalisedRequest,
    check_request_size,
    encode_request,
    normalise_request,
)
from airflow_provider_xai_batch.client.located import LocatedRequest
from airflow_provider_xai_batch.client.pacing import SharedWindowPacer
from airflow_provider_xai_batch.client.policy import ClientLimits, RetryPolicy, SlidingWindowLimiter
from airflow_provider_xai_batch.client.protocol import ApiCall
from airflow_provider_xai_batch.client.rejections import Where
from airflow_provider_xai_batch.client.seen_ids import SeenIds
from airflow_provider_xai_batch.client.transport_errors import TransportFailure, classify

log = logging.getLogger("airflow_provider_xai_batch.client")

DEFAULT_TIMEOUT = 120.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_CREATE_LOOKUP_SECONDS = 30.0
FIRST_ADD_CALL_BYTES = 1_000_000
USER_AGENT = "airflow-provider-xai-batch"


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


_PAGE_DECODER = msgspec.json.Decoder()


class _PageToken(msgspec.Struct, gc=False):
    # Everything else in the page is skipped without building objects.
    pagination_token: str | None = None
    next_page_token: str | None = None


_TOKEN_DECODER = msgspec.json.Decoder(_PageToken)

# The last member of the top-level object, when it is a token written as a plain string: no
# escapes, no quotes, printable ASCII only, so its bytes are its text. Anchored at the end of the
# body and ending in the top-level ``}``, this cannot match a key inside a result or its text.
# The blanks are JSON's own whitespace (``\s`` would also take characters JSON refuses).
_TAIL_TOKEN = re.compile(
    rb'[,{][ \t\r\n]*"(pagination_token|next_page_token)"[ \t\r\n]*:[ \t\r\n]*'
    rb'"([\x20\x21\x23-\x5b\x5d-\x7e]+)"[ \t\r\n]*\}[ \t\r\n]*\Z'
)
# Room for the member and a long token; a longer one is read by the full decode.
_TAIL_BYTES = 512


def tail_page_token(body: bytes) -> str | None:
    """The next page's token read from the end of a list page, or ``None`` when it cannot be told there.

    The service writes the token as the page's last member, so a page of hundreds of KB need not
    be parsed to find it. Only a strict match is taken: a non-empty plain token closing the
    top-level object. ``pagination_token`` wins over ``next_page_token`` wherever it is, so a
    ``next_page_token`` at the end counts only when the page holds no ``pagination_token`` at all.
    Anything else (a null, empty or escaped token, another member last) is ``None``: read the page
    whole.

    >>> tail_page_token(b'{"results":[],"pagination_token":"abc"}')
    'abc'
    >>> tail_page_token(b'{"results":[],"pagination_token":null}') is None
    True
    """
    if body[:1] != b"{":
        return None
    match = _TAIL_TOKEN.search(body, max(0, len(body) - _TAIL_BYTES))
    if match is None:
        return None
    key, token = match.groups()
    if key == b"next_page_token" and b'"pagination_token"' in body:
        return None
    return token.decode("ascii")


def release(response: httpx.Response) -> bytes:
    """The body of a read response, which is then freed as soon as it is dropped.

    An httpx response sits in a reference cycle (its stream points back at it), so only the cyclic
    garbage collector frees it. That collector seldom runs in an export, which builds few tracked
    objects, and pages of results are hundreds of KB each: without this, bodies piled up and memory
    grew with the size of the batch (about 40 MB per million results).
    """
    content = response.content
    response.stream = httpx.ByteStream(b"")
    return content


class AmbiguousOutcomeError(Exception):
    """A call that must not be sent twice failed after it may have been applied."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class ClientCore:
    """Configuration and pure-ish helpers shared by :class:`XAIBatchClient` and :class:`AsyncXAIBatchClient`."""

    #: Whether the next add call is encoded in a thread while this one is sent (the sync client).
    prefetch_add_calls = False

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = protocol.DEFAULT_BASE_URL,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float | None = None,
        conn_id: str | None = None,
        create_lookup_seconds: float = DEFAULT_CREATE_LOOKUP_SECONDS,
        max_retries: int | None = None,
        limits: ClientLimits | None = None,
        retry_policy: RetryPolicy | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        max_connections: int | None = None,
    ) -> None:
        self.base_url = (base_url or protocol.DEFAULT_BASE_URL).rstrip("/")
        self.conn_id = conn_id
        if not api_key or not api_key.strip():
            raise XAIInputError(
                "no API key given (set the connection's password or XAI_API_KEY)", source="connection"
            )
        self._api_key = clean_api_key(api_key, origin=self.origin)
        self.timeout = timeout
        # How long to keep looking for a batch whose create had an unclear outcome before creating again.
        self.create_lookup_seconds = create_lookup_seconds
        self.connect_timeout = (
            min(timeout, DEFAULT_CONNECT_TIMEOUT) if connect_timeout is None else connect_timeout
        )
        self.limits = limits or ClientLimits()
        # A copy: the caller's policy object may be shared by other clients.
        self.retry_policy = dataclasses.replace(retry_policy or RetryPolicy())
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
        # None: httpx's own pool limits. A number also keeps that many connections alive between
        # calls (httpx keeps 20, and a caller sending more at once would reconnect for each call);
        # the async client spreads them over small pools (see :mod:`.pools`).
        if max_connections is not None and max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.max_connections = max_connections

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    @property
    def origin(self) -> str:
        """Where this client goes, as every error message names it: the base URL (and connection id).

        >>> ClientCore("key", base_url="http://127.0.0.1:8787", conn_id="xai_default").origin
        "http://127.0.0.1:8787, connection 'xai_default'"
        """
        return f"{self.base_url}, connection {self.conn_id!r}" if self.conn_id else self.base_url

    def _http_options(self) -> dict[str, Any]:
        options: dict[str, Any] = (
            {}
            if self.max_connections is None
            else {
                "limits": httpx.Limits(
                    max_connections=self.max_connections, max_keepalive_connections=self.max_connections
                )
            }
        )
        return {
            **options,
            "base_url": self.base_url,
            "timeout": httpx.Timeout(self.timeout, connect=self.connect_timeout),
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
        elif call.upload is not None:
            # httpx writes form fields before files, as the service requires.
            kwargs["data"] = dict(call.upload.form)
            kwargs["files"] = {"file": (call.upload.filename, call.upload.file, "application/jsonl")}
        return kwargs

    def _retry_after_error(
        self, call: ApiCall, attempt: int, response: httpx.Response
    ) -> tuple[XAIAPIError, float | None]:
        error = error_from_response(
            response.status_code,
            response.content,
            retry_after=response.headers.get("Retry-After"),
            secret=self._api_key,
            origin=self.origin,
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
        self, call: ApiCall, attempt: int, exc: Exception, *, started: float
    ) -> tuple[XAIConnectionError, float | None]:
        """The error to raise for a call that got no answer, and how long to wait before retrying it."""
        failure = classify(exc)
        attempts = f"{attempt + 1} attempt{'s' if attempt else ''}"
        detail = scrub(str(exc), self._api_key) or "no details"
        error = XAIConnectionError(
            f"xAI API at {self.origin}: {failure.describe} "
            f"({call.label}, {attempts}; {type(exc).__name__}: {detail})",
            failure=failure.value,
            origin=self.origin,
        )
        if failure.reached:
            delay = self.retry_policy.retry_delay(attempt)
            if delay is not None and not call.resend_safe:
                raise AmbiguousOutcomeError(error)
        elif failure is TransportFailure.TLS:
            delay = None  # a certificate or protocol mismatch does not go away by waiting
        else:
            delay = self.retry_policy.reconnect_delay(attempt, elapsed=self._monotonic() - started)
        if delay is not None:
            log.warning(
                "%s at %s failed (%s); retry %d in %.1fs",
                call.label,
                self.origin,
                failure.describe,
                attempt + 1,
                delay,
            )
        return error, delay

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        # Released: a triggerer polling thousands of batches would otherwise leave every answer in
        # a reference cycle for the collector, and the piles of them set off full collections that
        # walk the whole heap while the event loop waits.
        content = release(response)
        if not content:
            return {}
        try:
            return json.loads(content)
        except (ValueError, json.JSONDecodeError):
            return {}

    def _page_json(self, response: httpx.Response) -> Any:
        # Result pages are the bulk of what an export reads; msgspec decodes them twice as fast.
        # Anything it will not take (e.g. integers beyond 64 bits) goes the usual way.
        try:
            return _PAGE_DECODER.decode(response.content) if response.content else {}
        except msgspec.DecodeError:
            return self._json(response)

    def _page_token(self, response: httpx.Response) -> str | None:
        # A page of 1,000 results is hundreds of KB; decoding it whole for its last member cost
        # about a third of the fetch thread's CPU. The tail answers for every page but the last.
        token = tail_page_token(response.content)
        if token is not None:
            return token
        try:
            page = _TOKEN_DECODER.decode(response.content)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return protocol.parse_page(self._page_json(response), "results")[1]
        return page.pagination_token or page.next_page_token or None

    def _encoded_requests(
        self, requests: Iterable[Any], source: str, noted: deque[tuple[Where, bool]]
    ) -> Iterator[tuple[str, bytes]]:
        """Normalise, size-check and encode each request, lazily.

        For each request, ``noted`` gets where it came from and whether its id is new to this call
        (an identical repeat is sent again, harmlessly, but not counted twice).
        """
        if isinstance(requests, (str, bytes, Mapping)):
            raise XAIInputError(
                f"requests must be a list of request objects, got {type(requests).__name__}", source=source
            )
        limit = self.limits.max_request_bytes
        # Bound once: this loop runs once per request, millions of times in a large ingest.
        note, is_new = noted.append, SeenIds().add
        for index, item in enumerate(requests):
            origin: Where
            kind = type(item)
            if kind is NormalisedRequest:
                # Already normalised (``normalise_jsonl``, ``normalise_requests``): not a second pass.
                request, origin = item, index
            elif kind is LocatedRequest:
                request = normalise_request(item.request, source=item.source, position=item.position)
                origin = (item.source, item.position)
            else:
                request, origin = normalise_request(item, source=source, position=index), index
            encoded = encode_request(request)
            if len(encoded) > limit:
                item_source, position = origin if isinstance(origin, tuple) else (source, f"item {index}")
                check_request_size(request, encoded, limit, source=item_source, position=position)
            request_id = request["batch_request_id"]
            note((origin, is_new(request_id)))
            yield request_id, encoded

    def _packed_adds(
        self, requests: Iterable[Any], source: str, sender_idle: Callable[[], bool] | None = None
    ) -> Iterator[PackedAdd]:
        """The add calls for ``requests``, each with where its requests came from.

        ``sender_idle`` tells whether the sender waits for the next call (see ``pack_add_calls``).
        """
        noted: deque[tuple[Where, bool]] = deque()
        packed = protocol.pack_add_calls(
            self._encoded_requests(requests, source, noted),
            max_body_bytes=self.limits.max_add_call_bytes,
            max_requests=self.limits.max_requests_per_call,
            # Packing 25 MB takes about half a second; a small first call gets the service working
            # on it meanwhile instead of waiting (the calls grow from there).
            first_body_bytes=FIRST_ADD_CALL_BYTES,
            sender_idle=sender_idle,
        )
        for call in packed:
            # The packer has read one request past this call at most: its entry stays for the next.
            entries = [noted.popleft() for _ in range(call.count)]
            yield PackedAdd(call, [origin for origin, _ in entries], sum(new for _, new in entries))


@dataclasses.dataclass(frozen=True)
class PackedAdd:
    """One add call and, for each of its requests, where it came from (see :data:`.rejections.Where`)."""

    call: protocol.AddCall
    where: list[Where]
    #: How many of its requests have ids not seen earlier in the same ``add_requests`` call.
    new: int
