"""The exception tree of the xAI Batch client.

::

    XAIError                          anything this package raises on purpose
    ├── XAIInputError                 a request the user gave cannot be sent (names source and position)
    ├── XAIConnectionError            the service could not be reached, or the answer was lost, after retries
    └── XAIAPIError                   the service answered with an error (status_code, code, message)
        ├── XAIAuthenticationError    401, or 400 "Incorrect API key provided"
        ├── XAIInvalidRequestError    400 and other 4xx without a class of their own
        ├── XAIPermissionDeniedError  403: cancelled batch, credits exhausted
        ├── XAINotFoundError          404
        ├── XAIConflictError          409/412: changed content under a known id, adds to a file batch
        ├── XAIRateLimitError         429: rate, capacity or spending limit
        └── XAIServerError            5xx

HTTP status is mapped to a class in exactly one place, :func:`error_from_response`.
No message built here contains the API key: the key is scrubbed from anything the service echoes.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote


class XAIError(Exception):
    """Base class of every error this package raises on purpose."""


class XAIInputError(XAIError, ValueError):
    """A request in the user's input is malformed; nothing has been sent.

    ``source`` names where the input came from (a file URI, ``requests``) and ``position`` the line
    (1-based) or list index (0-based) within it.

    >>> str(XAIInputError("invalid JSON", source="s3://b/in.jsonl", position="line 7"))
    's3://b/in.jsonl, line 7: invalid JSON'
    """

    def __init__(self, reason: str, *, source: str, position: str | None = None) -> None:
        self.reason = reason
        self.source = source
        self.position = position
        where = f"{source}, {position}" if position else source
        super().__init__(f"{where}: {reason}")


class XAIConnectionError(XAIError):
    """The service could not be reached, or its answer was lost, and retrying did not help.

    ``failure`` says what went wrong (``refused``, ``dns``, ``tls``, ``connect_timeout``,
    ``unreachable`` or ``lost``) and ``origin`` where the client was going (its base URL, and
    the connection id when a hook built the client).

    >>> err = XAIConnectionError("xAI API at http://127.0.0.1:9: connection refused", failure="refused")
    >>> (str(err), err.failure)
    ('xAI API at http://127.0.0.1:9: connection refused', 'refused')
    """

    def __init__(self, message: str, *, failure: str | None = None, origin: str | None = None) -> None:
        super().__init__(message)
        self.failure = failure
        self.origin = origin

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self),), {"failure": self.failure, "origin": self.origin})


class XAIAPIError(XAIError):
    """The service answered with an error.

    ``origin`` names where the answer came from: the base URL, and the connection id when a hook
    built the client.

    >>> err = XAIAPIError(404, "Some requested entity was not found", "batch not found")
    >>> (err.status_code, err.code, err.message)
    (404, 'Some requested entity was not found', 'batch not found')
    >>> str(XAIAPIError(404, None, "batch not found", origin="https://api.x.ai"))
    'xAI API error 404 (https://api.x.ai): batch not found'

    When the error is about one request of an add call, ``request_id``, ``source`` and
    ``position`` say which (see :meth:`for_request`).
    """

    request_id: str | None = None
    source: str | None = None
    position: str | None = None

    def __init__(
        self, status_code: int, code: str | None, message: str, *, origin: str | None = None
    ) -> None:
        self.status_code = status_code
        self.code = code
        self.message = message
        self.origin = origin
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f" ({self.origin})" if self.origin else ""
        about = [part for part in (self.source, self.position) if part]
        if self.request_id is not None:
            about.append(f"request {self.request_id!r}")
        named = ", ".join(about) + ": " if about else ""
        return f"xAI API error {self.status_code}{where}: {named}{self.message}"

    def for_request(self, request_id: str | None, source: str, position: str | None) -> XAIAPIError:
        """A copy of this error that names the one request it is about.

        >>> error = XAIInvalidRequestError(400, None, "Model grok-2-mini is not supported for batch processing.")
        >>> print(error.for_request("in.jsonl-1f2e3d4c-line-700", "s3://b/in.jsonl", "line 700"))
        xAI API error 400: s3://b/in.jsonl, line 700, request 'in.jsonl-1f2e3d4c-line-700': Model grok-2-mini is not supported for batch processing.
        """
        located = copy.copy(self)
        located.request_id, located.source, located.position = request_id, source, position
        located.args = (str(located),)
        return located

    def _state(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "request_id": self.request_id,
            "source": self.source,
            "position": self.position,
        }

    def __setstate__(self, state: dict[str, Any] | None) -> None:
        self.__dict__.update(state or {})
        self.args = (str(self),)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.status_code, self.code, self.message), self._state())


class XAIAuthenticationError(XAIAPIError):
    """The API key is missing, garbled or wrong (xAI answers 400 for a wrong key, 401 for a missing one)."""


class XAIInvalidRequestError(XAIAPIError):
    """The service rejected the call as invalid (400, 413, 422 ...), for example an unsupported model."""


class XAIPermissionDeniedError(XAIAPIError):
    """403: for example adding to a cancelled batch, or credits exhausted."""


class XAINotFoundError(XAIAPIError):
    """404: the batch or file does not exist (or no longer does)."""


class XAIConflictError(XAIAPIError):
    """412 (or 409): the call contradicts the current state, e.g. changed content under a known id."""


class XAIRateLimitError(XAIAPIError):
    """429: a rate limit, the service's capacity or the team's spending limit was hit."""

    def __init__(
        self,
        status_code: int,
        code: str | None,
        message: str,
        retry_after: float | None = None,
        *,
        origin: str | None = None,
    ) -> None:
        super().__init__(status_code, code, message, origin=origin)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[Any, ...]:
        args = (self.status_code, self.code, self.message, self.retry_after)
        return (type(self), args, self._state())


class XAIServerError(XAIAPIError):
    """5xx: transient trouble on the service's side."""


_WRONG_KEY_MARKER = "incorrect api key"


def secret_forms(secret: str) -> tuple[str, ...]:
    """Every way ``secret`` may be written into a text, longest first.

    Raw and stripped; escaped as Python writes a ``str`` or ``bytes`` repr (as HTTP libraries quote
    a header value they refuse); escaped as JSON; percent-encoded.

    >>> forms = secret_forms("k\\u00e9y")
    >>> "k\\\\xe9y" in forms, "k%C3%A9y" in forms
    (True, True)
    """
    forms = {
        secret,
        secret.strip(),
        repr(secret)[1:-1],
        ascii(secret)[1:-1],
        secret.encode("unicode_escape").decode("ascii"),
        repr(secret.encode("utf-8", "backslashreplace"))[2:-1],
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""),
    }
    return tuple(sorted((form for form in forms if form), key=len, reverse=True))


def scrub(text: str, secret: str | None) -> str:
    """Replace every occurrence of ``secret``, in any of its :func:`secret_forms`, by ``***``.

    >>> scrub("key xai-123 rejected", "xai-123")
    'key *** rejected'
    >>> scrub("Illegal header value b'Bearer xai-\\\\xc3\\\\xa9'", "xai-\\u00e9")
    "Illegal header value b'Bearer ***'"
    """
    if not secret:
        return text
    for form in secret_forms(secret):
        if form in text:
            text = text.replace(form, "***")
    return text


def parse_error_body(body: bytes) -> tuple[str | None, str]:
    """Read ``(code, message)`` from an error body, tolerating non-JSON and other shapes."""
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        payload = None
    if isinstance(payload, Mapping):
        code = payload.get("code")
        message: Any = payload.get("error") or payload.get("message") or payload.get("error_message")
        if isinstance(message, Mapping):  # {"error": {"message": ..., "code": ...}} as OpenAI-style APIs do
            code = code or message.get("code") or message.get("type")
            message = message.get("message")
        if message is None:
            message = json.dumps(payload)[:500]
        return (str(code) if code is not None else None, str(message))
    text = body.decode("utf-8", errors="replace").strip()
    return (None, text[:500] or "no error message")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds; ``None`` when absent or unreadable."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def error_from_response(
    status_code: int,
    body: bytes,
    *,
    retry_after: str | None = None,
    secret: str | None = None,
    origin: str | None = None,
) -> XAIAPIError:
    """Turn an error answer into the matching exception: the one place HTTP status becomes a class.

    >>> type(error_from_response(412, b'{"code": "x", "error": "content differs"}')).__name__
    'XAIConflictError'
    >>> type(error_from_response(400, b'{"error": "Incorrect API key provided"}')).__name__
    'XAIAuthenticationError'
    """
    code, message = parse_error_body(body)
    message = scrub(message, secret)
    if status_code == 401 or (status_code == 400 and _WRONG_KEY_MARKER in message.lower()):
        return XAIAuthenticationError(status_code, code, message, origin=origin)
    if status_code == 429:
        return XAIRateLimitError(status_code, code, message, parse_retry_after(retry_after), origin=origin)
    cls: type[XAIAPIError] = XAIAPIError
    if status_code == 403:
        cls = XAIPermissionDeniedError
    elif status_code == 404:
        cls = XAINotFoundError
    elif status_code in (409, 412):
        cls = XAIConflictError
    elif status_code >= 500:
        cls = XAIServerError
    elif 400 <= status_code < 500:
        cls = XAIInvalidRequestError
    return cls(status_code, code, message, origin=origin)
