"""A bounded record of what clients sent, so tests can check that no secret leaks where it should not."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

BODY_EXCERPT_BYTES = 4096


@dataclass
class LoggedRequest:
    """One request as received: method, target (path and query), headers, start of the body."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body_excerpt: bytes
    body_size: int
    route: str | None = None
    status: int | None = field(default=None)

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    def text(self, *, include_authorization: bool = False) -> str:
        """Everything logged as one string; the Authorization header only when asked for."""
        headers = "\n".join(
            f"{key}: {value}"
            for key, value in self.headers
            if include_authorization or key.lower() != "authorization"
        )
        body = self.body_excerpt.decode("utf-8", "replace")
        return f"{self.method} {self.target}\n{headers}\n\n{body}"


class RequestLog:
    """The last ``size`` requests, oldest first.

    >>> log = RequestLog(size=2)
    >>> for n in range(3):
    ...     log.append(LoggedRequest("GET", f"/v1/batches/{n}", [], b"", 0))
    >>> [entry.target for entry in log]
    ['/v1/batches/1', '/v1/batches/2']
    >>> log.contains("batches/2"), log.contains("batches/0")
    (True, False)
    """

    def __init__(self, size: int = 10_000) -> None:
        self._entries: deque[LoggedRequest] = deque(maxlen=size)
        self._lock = threading.Lock()

    def append(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __iter__(self) -> Iterator[LoggedRequest]:
        return iter(self.entries())

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def contains(self, text: str, *, include_authorization: bool = False) -> bool:
        """Whether ``text`` appears anywhere logged (outside the Authorization header by default)."""
        return any(
            text in entry.text(include_authorization=include_authorization) for entry in self.entries()
        )
