"""Adding requests in two passes over the same input, so nothing is sent unless everything is valid.

1. :func:`validate` reads everything once and checks every request (shape, endpoint, body, id,
   size, ids reused for other content across all files), then returns an :class:`InputSummary`.
2. :func:`iter_located` streams them again, for sending, each with its file and line (or list
   label and item) so that a request the service rejects is named where the user wrote it.

Memory never grows with the input: one line at a time, plus about 100 bytes per request id.

>>> from airflow_provider_xai_batch.sources.resolve import resolve_input
>>> resolved = resolve_input(requests=[{"custom_id": "q1", "body": {
...     "model": "grok-4.3", "messages": [{"role": "user", "content": "Hi"}]}}])
>>> validate(resolved).unique
1
>>> [request["batch_request_id"] for request in iter_native(resolved)]
['q1']
>>> [(located.source, located.position) for located in iter_located(resolved)]
[('requests', 'item 0')]
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from airflow_provider_xai_batch.client import LocatedRequest
from airflow_provider_xai_batch.client.inputs import (
    DEFAULT_MAX_REQUEST_BYTES,
    DuplicateIdChecker,
    NativeRequest,
    check_request_size,
    encode_request,
)
from airflow_provider_xai_batch.sources.reading import iter_positioned
from airflow_provider_xai_batch.sources.resolve import ResolvedInput

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class InputSummary:
    """What :func:`validate` found.

    ``total`` counts every request read, ``unique`` counts identical repeats once (the service
    keeps one of them), ``per_source`` maps each file URI (or the list label) to its request count.
    """

    total: int
    unique: int
    per_source: dict[str, int] = field(default_factory=dict)


def validate(resolved: ResolvedInput, *, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES) -> InputSummary:
    """Read the whole input once and check every request; raise :class:`XAIInputError` at the first problem.

    Checks each request's shape, endpoint url, body and id, its encoded size against
    ``max_request_bytes``, and that no id is used for different content anywhere in the input
    (across all files). Nothing is sent. Memory stays flat: one line at a time, plus about 100
    bytes per request for the id check.

    >>> validate(resolve_input(requests=[{"body": {"model": "grok-4.3", "messages": [1]}}])).per_source
    {'requests': 1}
    """
    checker = DuplicateIdChecker()
    per_source: dict[str, int] = dict.fromkeys(resolved.sources, 0)
    total = unique = 0
    for source, where, request in iter_positioned(resolved):
        check_request_size(request, encode_request(request), max_request_bytes, source=source, position=where)
        if checker.check(request, source=source, position=where):
            unique += 1
        total += 1
        per_source[source] += 1
    return InputSummary(total=total, unique=unique, per_source=per_source)


def iter_native(resolved: ResolvedInput) -> Iterator[NativeRequest]:
    """Stream the input's normalised native requests, each identical repeat only once.

    Meant for the second pass after :func:`validate`; a request id reused for other content (the
    input changed in between) still raises :class:`XAIInputError` rather than being sent.
    """
    for located in iter_located(resolved):
        yield located.request


def iter_located(resolved: ResolvedInput) -> Iterator[LocatedRequest]:
    """Like :func:`iter_native`, each request with its source and position, as the client takes them.

    The client names a request it cannot send, or one the service rejects, by these: a file URI and
    ``line N`` (counting every line of the file), or the list label and ``item N`` (counting
    identical repeats too, though they are sent once).
    """
    checker = DuplicateIdChecker()
    for source, where, request in iter_positioned(resolved):
        if checker.check(request, source=source, position=where):
            yield LocatedRequest(request, source, where)
