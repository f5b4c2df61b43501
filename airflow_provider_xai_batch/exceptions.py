"""Task-level errors: what failed, by type, and whether Airflow should retry the task.

Operators and the sensor raise only these (the client's own error stays attached as
``__cause__``, its message unchanged). Errors no retry can fix fail the task at once, whatever
its ``retries``; transient trouble keeps Airflow's retries::

    XAIBatchTaskError                    AirflowException: any of the below; retried as usual
    ├── XAIBatchPermanentError           AirflowFailException: no retry can fix it, the task fails now
    │   ├── XAIBatchInputError           a bad request in the input (also an XAIInputError); nothing sent
    │   ├── XAIBatchAuthenticationError  the key is missing, garbled or wrong (401, 400 wrong key)
    │   ├── XAIBatchInvalidRequestError  the service refused the call as invalid (400, 413, 422 ...)
    │   ├── XAIBatchPermissionDeniedError 403: a cancelled batch, credits exhausted
    │   ├── XAIBatchNotFoundError        404: no such batch or file
    │   ├── XAIBatchConflictError        409/412: changed content under a known id, adds to a file batch
    │   └── XAIBatchUnsuccessfulError    the batch ended without completing
    │       ├── XAIBatchFailedError      xAI failed it (its message is included)
    │       ├── XAIBatchExpiredError     it expired with requests still pending
    │       └── XAIBatchCancelledError   it was cancelled
    ├── XAIBatchTransientError           429, 5xx, connection trouble after the client's own retries
    └── XAIBatchWaitTimeout              AirflowSensorTimeout: the wait's ``timeout`` passed

A wait timeout fails the task without a retry, as a sensor's ``timeout`` does in Airflow: the
timeout is the whole time the user is willing to wait, and retrying would wait ``retries`` times
as long. The batch keeps running; clearing the task re-attaches to it and waits again.

>>> try:
...     raise task_error_for(XAINotFoundError(404, None, "batch not found"))
... except XAIBatchPermanentError as error:
...     print(type(error).__name__, "-", error)
XAIBatchNotFoundError - xAI API error 404: batch not found
"""

from __future__ import annotations

from typing import ClassVar

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, AirflowSensorTimeout

from airflow_provider_xai_batch.client.errors import (
    XAIAuthenticationError,
    XAIConflictError,
    XAIConnectionError,
    XAIError,
    XAIInputError,
    XAIInvalidRequestError,
    XAINotFoundError,
    XAIPermissionDeniedError,
    XAIRateLimitError,
    XAIServerError,
)

__all__ = [
    "XAIBatchAuthenticationError",
    "XAIBatchCancelledError",
    "XAIBatchConflictError",
    "XAIBatchExpiredError",
    "XAIBatchFailedError",
    "XAIBatchInputError",
    "XAIBatchInvalidRequestError",
    "XAIBatchNotFoundError",
    "XAIBatchPermanentError",
    "XAIBatchPermissionDeniedError",
    "XAIBatchTaskError",
    "XAIBatchTransientError",
    "XAIBatchUnsuccessfulError",
    "XAIBatchWaitTimeout",
    "error_from_event",
    "task_error_for",
]


class XAIBatchTaskError(AirflowException):
    """Base class of every error the provider's tasks raise; Airflow retries it unless a subclass says not to.

    ``kind`` names the class in trigger events, which carry only JSON.
    """

    kind: ClassVar[str] = "error"


class XAIBatchPermanentError(XAIBatchTaskError, AirflowFailException):
    """An error no retry can fix: the task fails at once, whatever its ``retries``."""

    kind = "permanent"


class XAIBatchInputError(XAIBatchPermanentError, XAIInputError):
    """A request in the input is malformed (names the source and position); nothing was sent.

    Also an :class:`~airflow_provider_xai_batch.client.errors.XAIInputError`, with the same
    ``reason``, ``source`` and ``position``.
    """

    kind = "input"


class XAIBatchAuthenticationError(XAIBatchPermanentError):
    """The API key is missing, garbled or wrong; fix the connection, then clear the task."""

    kind = "authentication"


class XAIBatchInvalidRequestError(XAIBatchPermanentError):
    """The service refused the call as invalid (400, 413, 422 ...), for example an unsupported model."""

    kind = "invalid_request"


class XAIBatchPermissionDeniedError(XAIBatchPermanentError):
    """403: for example adding to a cancelled batch, or the team's credits are exhausted."""

    kind = "permission_denied"


class XAIBatchNotFoundError(XAIBatchPermanentError):
    """404: the batch or file does not exist (or no longer does)."""

    kind = "not_found"


class XAIBatchConflictError(XAIBatchPermanentError):
    """409/412: the call contradicts the batch's state, e.g. other content under a request id it holds."""

    kind = "conflict"


class XAIBatchUnsuccessfulError(XAIBatchPermanentError):
    """The batch ended without completing: failed by xAI, expired or cancelled."""

    kind = "unsuccessful"


class XAIBatchFailedError(XAIBatchUnsuccessfulError):
    """xAI failed the batch (for example a file batch whose JSONL it could not read); its message is included."""

    kind = "batch_failed"


class XAIBatchExpiredError(XAIBatchUnsuccessfulError):
    """The batch expired with requests still pending."""

    kind = "batch_expired"


class XAIBatchCancelledError(XAIBatchUnsuccessfulError):
    """The batch was cancelled."""

    kind = "batch_cancelled"


class XAIBatchTransientError(XAIBatchTaskError):
    """429, 5xx or connection trouble that outlasted the client's own retries; Airflow's retries apply."""

    kind = "transient"


class XAIBatchWaitTimeout(XAIBatchTaskError, AirflowSensorTimeout):
    """The wait's ``timeout`` passed before the batch finished; the task fails without a retry.

    The batch keeps running: clear the task to re-attach to it and wait again.
    """

    kind = "timeout"


# The one place a client error becomes a task error; the first matching row wins.
_TRANSLATIONS: tuple[tuple[type[XAIError], type[XAIBatchTaskError]], ...] = (
    (XAIAuthenticationError, XAIBatchAuthenticationError),
    (XAIInvalidRequestError, XAIBatchInvalidRequestError),
    (XAIPermissionDeniedError, XAIBatchPermissionDeniedError),
    (XAINotFoundError, XAIBatchNotFoundError),
    (XAIConflictError, XAIBatchConflictError),
    (XAIRateLimitError, XAIBatchTransientError),
    (XAIServerError, XAIBatchTransientError),
    (XAIConnectionError, XAIBatchTransientError),
)

_BY_KIND: dict[str, type[XAIBatchTaskError]] = {XAIBatchTaskError.kind: XAIBatchTaskError}
_BY_KIND.update((task_type.kind, task_type) for _, task_type in _TRANSLATIONS)


def task_error_for(error: XAIError) -> XAIBatchTaskError:
    """The task-level error for a client error, with the same message (raise it ``from error``).

    Any other :class:`XAIError` (an answer no class covers, a connection without a key) becomes
    the retryable :class:`XAIBatchTaskError`.

    >>> type(task_error_for(XAIServerError(503, None, "busy"))).__name__
    'XAIBatchTransientError'
    """
    if isinstance(error, XAIBatchTaskError):
        return error
    if isinstance(error, XAIInputError):
        return XAIBatchInputError(error.reason, source=error.source, position=error.position)
    task_type = next((task for client, task in _TRANSLATIONS if isinstance(error, client)), XAIBatchTaskError)
    return task_type(str(error))


def error_kind(error: BaseException | None) -> str | None:
    """The ``kind`` of the task error a poll error becomes, for a trigger event; ``None`` for anything else.

    >>> error_kind(XAINotFoundError(404, None, "batch not found")), error_kind(KeyError("x"))
    ('not_found', None)
    """
    if not isinstance(error, XAIError):
        return None
    return task_error_for(error).kind


def error_from_event(kind: object, message: str) -> XAIBatchTaskError:
    """The task error an event's ``error_kind`` names; unknown or missing kinds stay retryable.

    >>> type(error_from_event("authentication", "wrong key")).__name__
    'XAIBatchAuthenticationError'
    """
    task_type = _BY_KIND.get(kind, XAIBatchTaskError) if isinstance(kind, str) else XAIBatchTaskError
    return task_type(message)
