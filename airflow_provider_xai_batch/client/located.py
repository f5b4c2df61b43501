"""A request together with where it came from, so that errors about it can say so."""

from __future__ import annotations

from typing import Any, NamedTuple


class LocatedRequest(NamedTuple):
    """One request for :meth:`~.sync.XAIBatchClient.add_requests`, with its source and position.

    Plain requests are named by the ``source`` given to ``add_requests`` and their 0-based index
    (``requests, item 7``). Readers of files pass each request as a ``LocatedRequest`` instead, so
    that an input error or a request the service rejects is named by file and line.

    >>> request = {"custom_id": "q1", "body": {"model": "grok-4.3", "messages": [{"role": "user", "content": "Hi"}]}}
    >>> LocatedRequest(request, "s3://bucket/in.jsonl", "line 7").position
    'line 7'
    """

    request: Any
    source: str
    position: str
