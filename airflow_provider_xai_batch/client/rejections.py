"""Finding the request behind a rejected add call. Pure: no I/O.

The service checks an add call as a whole: when one request is wrong (an unsupported model, an id
reused for other content), it answers 400 or 412 and admits nothing, naming neither the request nor
its place. So a rejected call with several requests is split in halves, and the half that is
rejected again is split again, until one request is left: the error is then raised with that
request's id and where it came from. Halves that are accepted stay added, which is harmless: ids
are deterministic, so sending the input again adds nothing twice.

>>> rejected = XAIInvalidRequestError(400, None, "Model grok-2-mini is not supported for batch processing.")
>>> should_split(rejected, count=8), should_split(rejected, count=1)
(True, False)
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from airflow_provider_xai_batch.client.errors import XAIAPIError, XAIConflictError, XAIInvalidRequestError
from airflow_provider_xai_batch.client.protocol import AddCall

#: Where each request of a packed call came from: its index in the caller's iterable, or
#: ``(source, position)`` when the caller passed a :class:`~.located.LocatedRequest`.
Where = int | tuple[str, str]


class _RequestId(msgspec.Struct):
    batch_request_id: str = ""


_ID_DECODER = msgspec.json.Decoder(_RequestId)


def should_split(error: Exception, *, count: int) -> bool:
    """Whether a rejected add call of ``count`` requests is worth splitting to find the bad one."""
    return count > 1 and isinstance(error, (XAIInvalidRequestError, XAIConflictError))


def halves(call: AddCall, first: int) -> list[tuple[AddCall, int]]:
    """The two halves of ``call`` with the index of their first request, in the order to pop them.

    ``first`` is the index of the call's first request within the packed call it came from.
    """
    head, tail = call.split()
    return [(tail, first + head.count), (head, first)]


def position_of(where: Where, source: str) -> tuple[str, str]:
    """``(source, position)`` of a request, as error messages name it."""
    if isinstance(where, int):
        return source, f"item {where}"
    return where


def located_error(
    error: XAIAPIError, call: AddCall, where: Sequence[Where], first: int, source: str
) -> XAIAPIError:
    """The service's error for a one-request call, naming that request's id, source and position."""
    try:
        request_id = _ID_DECODER.decode(call.request_body(0)).batch_request_id
    except (msgspec.DecodeError, msgspec.ValidationError):
        request_id = ""
    request_source, position = position_of(where[first], source)
    return error.for_request(request_id or None, request_source, position)
