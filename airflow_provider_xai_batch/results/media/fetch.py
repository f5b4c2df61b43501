"""Fetching one media URL into storage: the policy checked at every hop, streamed, retried, capped.

The client here is not the API client: it has no API key, sends no cookies (none are kept), reads
no ``.netrc`` or proxy settings from the environment, and follows no redirect by itself, so each
hop goes through :class:`~.policy.MediaPolicy` before anything is sent to it. Host names are
resolved by the connection itself, which checks the addresses and connects to one it checked
(TLS still verifies the host name), so a name cannot resolve to a public address for the check
and to a private one for the connection.
"""

from __future__ import annotations

import http.cookiejar
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin

import httpcore
import httpx

from airflow_provider_xai_batch.results.media.policy import MediaPolicy
from airflow_provider_xai_batch.results.media.storage import MediaSink

EXPIRED_STATUSES = frozenset({403, 404, 410})
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
CHUNK_BYTES = 1024 * 1024
USER_AGENT = "airflow-provider-xai-batch (media export)"

Resolver = Callable[[str, int], list[str]]


class MediaFailure(Exception):
    """A media item that could not be stored; ``reason`` is what the manifest says."""

    def __init__(self, reason: str, *, expired: bool = False, refused: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.expired = expired
        self.refused = refused


def resolve_addresses(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (what a connection might reach)."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as error:
        raise MediaFailure(f"cannot resolve {host}: {error}") from None
    return sorted({str(info[4][0]) for info in infos})


def _no_cookies() -> http.cookiejar.CookieJar:
    # A jar whose policy accepts no cookie: a media host cannot set one to be sent back later.
    return http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


class _CheckedAddresses(httpcore.NetworkBackend):
    """Opens TCP connections only to addresses the policy accepts, resolving each name once."""

    def __init__(self, policy: MediaPolicy, resolve: Resolver) -> None:
        self._inner = httpcore.SyncBackend()
        self._policy = policy
        self._resolve = resolve
        self._local = {(host, port) for _, host, port in policy.local_origins}

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        addresses = self._resolve(host, port)
        if (host.lower(), port) not in self._local:
            refusal = self._policy.address_refusal(f"https://{host}:{port}/", addresses)
            if refusal is not None:
                raise MediaFailure(f"refused: {refusal}", refused=True)
        error: Exception | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as failed:
                error = failed
        raise error if error is not None else httpcore.ConnectError(f"no address for {host}")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _checked_transport(policy: MediaPolicy, resolve: Resolver, concurrency: int) -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport(
        trust_env=False,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    )
    # httpx builds its pool with the default network backend; this one checks what it connects to.
    transport._pool._network_backend = _CheckedAddresses(policy, resolve)
    return transport


class MediaFetcher:
    """Fetch media URLs under one policy; shared by the threads of one export.

    >>> fetcher = MediaFetcher(MediaPolicy.for_connection("https://api.x.ai"))  # doctest: +SKIP
    >>> sink = fetcher.fetch("https://imgen.x.ai/xai-imgen/a.jpeg", open_sink)  # doctest: +SKIP
    """

    def __init__(
        self,
        policy: MediaPolicy,
        *,
        concurrency: int = 4,
        retries: int = 3,
        timeout: float = 60.0,
        backoff_seconds: float = 0.5,
        resolve: Resolver = resolve_addresses,
    ) -> None:
        self.policy = policy
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self._client = httpx.Client(
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            cookies=_no_cookies(),
            headers={"user-agent": USER_AGENT},
            transport=_checked_transport(policy, resolve, max(1, concurrency)),
        )

    def close(self) -> None:
        self._client.close()

    def fetch(self, url: str, open_sink: Callable[[str | None], MediaSink]) -> tuple[MediaSink, str | None]:
        """Store ``url`` through a sink ``open_sink(content_type)`` returns; ``(sink, content type)``.

        Raises :class:`MediaFailure` when the URL is refused, expired, too big or keeps failing.
        """
        attempt = 0
        while True:
            try:
                return self._fetch_once(url, open_sink)
            except _Transient as transient:
                attempt += 1
                if attempt > self.retries:
                    raise MediaFailure(f"{transient.reason} (after {attempt} attempts)") from None
                delay = transient.retry_after
                if delay is None:
                    delay = self.backoff_seconds * 2 ** (attempt - 1)
                time.sleep(min(delay, 30.0))

    def _fetch_once(
        self, url: str, open_sink: Callable[[str | None], MediaSink]
    ) -> tuple[MediaSink, str | None]:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            self._check(current)
            request = self._client.build_request("GET", current)
            try:
                response = self._client.send(request, stream=True)
            except httpx.TransportError as error:
                raise _Transient(f"{type(error).__name__}: {error}") from None
            try:
                status = response.status_code
                if status in REDIRECT_STATUSES and response.headers.get("location"):
                    current = urljoin(current, response.headers["location"])
                    continue
                if status in EXPIRED_STATUSES:
                    raise MediaFailure(
                        f"HTTP {status} from the media host: the URL has expired "
                        "(xAI's media URLs expire one hour after generation)",
                        expired=True,
                    )
                if status in TRANSIENT_STATUSES:
                    raise _Transient(f"HTTP {status} from the media host", _retry_after(response))
                if status != 200:
                    raise MediaFailure(f"HTTP {status} from the media host")
                return self._store(response, open_sink)
            finally:
                response.close()
        raise MediaFailure(f"more than {MAX_REDIRECTS} redirects", refused=True)

    def _check(self, url: str) -> None:
        # The URL here; the addresses its host resolves to when the connection is opened.
        refusal = self.policy.refusal(url)
        if refusal is not None:
            raise MediaFailure(f"refused: {refusal}", refused=True)

    def _store(
        self, response: httpx.Response, open_sink: Callable[[str | None], MediaSink]
    ) -> tuple[MediaSink, str | None]:
        limit = self.policy.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise MediaFailure(f"the file is {declared} bytes, above the limit of {limit} bytes")
        content_type = response.headers.get("content-type")
        sink = open_sink(content_type)
        try:
            for chunk in response.iter_bytes(CHUNK_BYTES):
                sink.write(chunk)
                if sink.size > limit:
                    raise MediaFailure(f"the file is larger than the limit of {limit} bytes")
            sink.commit()
        except httpx.TransportError as error:
            sink.discard()
            raise _Transient(f"{type(error).__name__} while reading: {error}") from None
        except BaseException:
            sink.discard()
            raise
        return sink, content_type


class _Transient(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def _retry_after(response: httpx.Response) -> float | None:
    value: Any = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
