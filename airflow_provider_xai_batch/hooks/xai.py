"""The Airflow hook: turns an ``xai`` connection into a configured client, and is the Batch API's facade.

The package's operators, sensor and sources call the hook's methods (:meth:`XAIBatchHook.get_batch`,
:meth:`XAIBatchHook.add_requests` ...), never the client's: an API change touches the client and this
facade only. ``get_conn()`` hands the client itself to layers without Airflow (the results export).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowNotFoundException, BaseHook, mask_secret

from airflow_provider_xai_batch.client import (
    AsyncXAIBatchClient,
    Batch,
    BatchRequestMetadata,
    BatchResult,
    ClientLimits,
    RetryPolicy,
    UploadedFile,
    XAIBatchClient,
    XAIError,
)
from airflow_provider_xai_batch.client.protocol import DEFAULT_BASE_URL

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from airflow_provider_xai_batch.client.plans import AddRequestsOptions

API_KEY_ENV = "XAI_API_KEY"
BASE_URL_ENV = "XAI_BASE_URL"


def base_url_of(host: str | None, port: int | None = None, schema: str | None = None) -> str:
    """The base URL from a connection's host (a full URL or a bare host), port and schema.

    >>> base_url_of("http://127.0.0.1:8787"), base_url_of("127.0.0.1", 8787, "http"), base_url_of(None)
    ('http://127.0.0.1:8787', 'http://127.0.0.1:8787', 'https://api.x.ai')
    """
    if not host:
        return os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    host = host.strip().rstrip("/")
    if "://" not in host:
        scheme = schema if schema in ("http", "https") else "https"
        host = f"{scheme}://{host}"
    if port and host.count(":") < 2:
        host = f"{host}:{port}"
    return host


def client_options(extra: Mapping[str, Any]) -> dict[str, Any]:
    """Client keyword arguments from a connection's extra: timeouts, retries and limits.

    An empty value means the default: the connection form saves ``null`` for every field left empty.

    >>> client_options({"timeout": 60, "connect_retries": 1})["retry_policy"].connect_retries
    1
    >>> client_options({"timeout": None, "add_calls": None})["limits"].add_calls
    1000
    """
    extra = {key: value for key, value in extra.items() if value is not None and value != ""}
    options: dict[str, Any] = {"limits": ClientLimits.from_mapping(extra)}
    for key in ("timeout", "connect_timeout", "create_lookup_seconds"):
        if extra.get(key) is not None:
            options[key] = float(extra[key])
    if extra.get("max_retries") is not None:
        options["max_retries"] = int(extra["max_retries"])
    policy = RetryPolicy()
    if extra.get("connect_retries") is not None:
        policy.connect_retries = int(extra["connect_retries"])
    if extra.get("connect_retry_seconds") is not None:
        policy.connect_retry_seconds = float(extra["connect_retry_seconds"])
    options["retry_policy"] = policy
    return options


# The connection test answers within seconds: one short try to connect, no retries.
TEST_CONNECTION_OPTIONS: Mapping[str, Any] = {"timeout": 10.0, "connect_timeout": 3.0, "max_retries": 0}


class XAIBatchHook(BaseHook):
    """Interact with xAI's Batch API through an Airflow connection of type ``xai``.

    The connection's password is the API key (empty: the ``XAI_API_KEY`` environment variable),
    its host the base URL (default ``https://api.x.ai``), its extra optional ``timeout``,
    ``max_retries`` and rate/size limits, and for an unreachable service ``connect_timeout``
    (seconds, default 10), ``connect_retries`` (default 3) and ``connect_retry_seconds`` (default
    10), and ``create_lookup_seconds`` (default 30: how long to look for a batch whose create had an
    unclear outcome before creating it again). Surrounding whitespace in the key is ignored.

    >>> hook = XAIBatchHook(xai_conn_id="xai_default")  # doctest: +SKIP
    >>> batch = hook.create_batch("nightly-eval")  # doctest: +SKIP
    >>> hook.add_requests(batch.batch_id, [{"custom_id": "q1", "body": {  # doctest: +SKIP
    ...     "model": "grok-4.3", "messages": [{"role": "user", "content": "Hello"}]}}])
    1
    """

    conn_name_attr = "xai_conn_id"
    default_conn_name = "xai_default"
    conn_type = "xai"
    hook_name = "xAI Batch"

    def __init__(self, xai_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.xai_conn_id = xai_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Connection form: only what an xAI connection needs."""
        return {
            "hidden_fields": ["schema", "port", "login"],
            "relabeling": {"host": "Base URL", "password": "API key"},
            "placeholders": {
                "host": DEFAULT_BASE_URL,
                "password": "xai-... (empty: the XAI_API_KEY environment variable)",
                "extra": json.dumps(
                    {"timeout": 120, "max_retries": 8, "add_calls": 1000, "add_window_seconds": 30}
                ),
            },
        }

    # -- connection -> client --------------------------------------------------------------------
    def _options_from(
        self,
        password: str | None,
        host: str | None,
        port: int | None,
        schema: str | None,
        extra: Mapping[str, Any],
    ) -> dict[str, Any]:
        raw = password if password and password.strip() else os.environ.get(API_KEY_ENV, "")
        api_key = raw.strip()
        if not api_key:
            raise XAIError(
                f"connection {self.xai_conn_id!r} has no API key: set its password or the {API_KEY_ENV} variable"
            )
        # Both as stored and as sent, so that either is masked wherever Airflow finds it.
        mask_secret(raw)
        mask_secret(api_key)
        return {
            "api_key": api_key,
            "base_url": base_url_of(host, port, schema),
            "conn_id": self.xai_conn_id,
            **client_options(extra),
        }

    def _sync_options(self) -> dict[str, Any]:
        try:
            conn = self.get_connection(self.xai_conn_id)
        except AirflowNotFoundException:
            if self.xai_conn_id != self.default_conn_name or not os.environ.get(API_KEY_ENV):
                raise
            return self._options_from(None, None, None, None, {})
        return self._options_from(conn.password, conn.host, conn.port, conn.schema, conn.extra_dejson)

    @functools.cached_property
    def client(self) -> XAIBatchClient:
        return XAIBatchClient(**self._sync_options())

    def close(self) -> None:
        """Close the cached client's connections, if a client was built."""
        client = self.__dict__.pop("client", None)
        if client is not None:
            client.close()

    def get_conn(self) -> XAIBatchClient:
        """The cached synchronous client."""
        return self.client

    async def get_async_conn(self, **overrides: Any) -> AsyncXAIBatchClient:
        """A new asynchronous client; the connection is resolved without blocking the event loop.

        ``overrides`` are client options that take precedence over the connection's, such as
        ``max_connections`` for a client many waits share.
        """
        from airflow.providers.common.compat.connection import get_async_connection

        try:
            conn = await get_async_connection(self.xai_conn_id, hook=self)
        except AirflowNotFoundException:
            if self.xai_conn_id != self.default_conn_name or not os.environ.get(API_KEY_ENV):
                raise
            return AsyncXAIBatchClient(**{**self._options_from(None, None, None, None, {}), **overrides})
        try:
            from airflow.providers.common.compat.connection import get_async_extra_dejson

            extra = await get_async_extra_dejson(conn)
        except ImportError:  # older common-compat: extra_dejson is plain parsing there
            extra = conn.extra_dejson
        return AsyncXAIBatchClient(
            **{**self._options_from(conn.password, conn.host, conn.port, conn.schema, extra), **overrides}
        )

    def test_connection(self) -> tuple[bool, str]:
        """One cheap authenticated call (the first page of one batch), answered within seconds.

        The message names the base URL and the connection id, never the key.
        """
        try:
            options = {**self._sync_options(), **TEST_CONNECTION_OPTIONS}
            with XAIBatchClient(**options) as client:
                next(iter(client.iter_batches(page_size=1)), None)
        except Exception as exc:  # the UI wants a message, not a traceback
            return False, str(exc)
        return True, f"Connected to {client.base_url} (connection {self.xai_conn_id!r})"

    # -- the Batch API -----------------------------------------------------------------------------
    def create_batch(self, name: str, *, input_file_id: str | None = None) -> Batch:
        return self.get_conn().create_batch(name, input_file_id=input_file_id)

    def get_batch(self, batch_id: str) -> Batch:
        return self.get_conn().get_batch(batch_id)

    def iter_batches(self, *, page_size: int = 100) -> Iterator[Batch]:
        return self.get_conn().iter_batches(page_size=page_size)

    def find_batch_by_name(self, name: str) -> Batch | None:
        return self.get_conn().find_batch_by_name(name)

    def add_requests(
        self,
        batch_id: str,
        requests: Iterable[Any],
        **options: Unpack[AddRequestsOptions],
    ) -> int:
        """Stream requests into a batch; see :meth:`XAIBatchClient.add_requests`."""
        return self.get_conn().add_requests(batch_id, requests, **options)

    @property
    def limits(self) -> ClientLimits:
        """The limits of the connection (its extra may lower the service's published ones)."""
        return self.get_conn().limits

    def iter_batch_requests(self, batch_id: str, *, page_size: int = 1000) -> Iterator[BatchRequestMetadata]:
        return self.get_conn().iter_batch_requests(batch_id, page_size=page_size)

    def iter_results(self, batch_id: str, *, page_size: int = 1000) -> Iterator[BatchResult]:
        return self.get_conn().iter_results(batch_id, page_size=page_size)

    def iter_result_pages(self, batch_id: str, *, page_size: int = 1000) -> Iterator[list[BatchResult]]:
        return self.get_conn().iter_result_pages(batch_id, page_size=page_size)

    def cancel_batch(self, batch_id: str) -> Batch:
        return self.get_conn().cancel_batch(batch_id)

    def get_file(self, file_id: str) -> UploadedFile:
        return self.get_conn().get_file(file_id)

    def iter_files(self, *, page_size: int = 100) -> Iterator[UploadedFile]:
        return self.get_conn().iter_files(page_size=page_size)

    def upload_file(
        self, source: Any, *, filename: str | None = None, conn_id: str | None = None
    ) -> UploadedFile:
        """Upload a JSONL file from a local path, a URI, an ``ObjectStoragePath`` or an open binary file, streamed."""
        if hasattr(source, "read") and not hasattr(source, "open"):  # already open: send as it is
            return self.get_conn().upload_file(source, filename=filename)
        if isinstance(source, (str, os.PathLike)) and "://" not in os.fspath(source):
            return self.get_conn().upload_file(os.fspath(source), filename=filename)
        from airflow.sdk import ObjectStoragePath

        path = (
            source
            if isinstance(source, ObjectStoragePath)
            else ObjectStoragePath(str(source), conn_id=conn_id)
        )
        with path.open("rb") as handle:  # type: ignore[no-untyped-call]
            return self.get_conn().upload_file(handle, filename=filename or path.name)
