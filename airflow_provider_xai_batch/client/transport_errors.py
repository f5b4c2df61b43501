"""What went wrong on the way to the service, told apart so that each case is retried as it deserves.

A refused connection, an unknown host name or a failed TLS handshake mean the service was never
reached: nothing was applied, and waiting a minute seldom helps (a TLS failure never does). A
connection lost during a call means the service was reached and may be busy: that is retried like
a 5xx.

>>> import httpx
>>> classify(httpx.ConnectError("[Errno 111] Connection refused")).value
'refused'
>>> classify(httpx.ReadTimeout("timed out")).reached
True
"""

from __future__ import annotations

import enum
import socket
import ssl
from collections.abc import Iterator

import httpx


class TransportFailure(str, enum.Enum):
    """Why a call got no answer."""

    REFUSED = "refused"
    DNS = "dns"
    TLS = "tls"
    CONNECT_TIMEOUT = "connect_timeout"
    UNREACHABLE = "unreachable"
    LOST = "lost"

    @property
    def reached(self) -> bool:
        """Whether the service was reached (the call may have been applied)."""
        return self is TransportFailure.LOST

    @property
    def describe(self) -> str:
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    TransportFailure.REFUSED: "connection refused",
    TransportFailure.DNS: "host name not found",
    TransportFailure.TLS: "TLS handshake failed",
    TransportFailure.CONNECT_TIMEOUT: "connecting timed out",
    TransportFailure.UNREACHABLE: "could not connect",
    TransportFailure.LOST: "connection lost during the call",
}

_DNS_HINTS = (
    "name or service not known",
    "nodename nor servname",
    "temporary failure in name resolution",
    "no address associated with hostname",
    "getaddrinfo failed",
)
_TLS_HINTS = ("certificate verify failed", "ssl:", "tlsv1", "sslv3", "wrong version number")
_REFUSED_HINTS = ("connection refused", "errno 111]", "errno 61]", "winerror 10061")


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, what it was raised from, and errors it carries as arguments (as httpcore does)."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [arg for arg in current.args if isinstance(arg, BaseException)]
        pending += [linked for linked in (current.__cause__, current.__context__) if linked is not None]


def classify(error: BaseException) -> TransportFailure:
    """Name what went wrong, from the exception and those it was raised from."""
    if not isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return TransportFailure.LOST
    for cause in _chain(error):
        if isinstance(cause, (ssl.SSLError, ssl.CertificateError)):
            return TransportFailure.TLS
        if isinstance(cause, socket.gaierror):
            return TransportFailure.DNS
        if isinstance(cause, ConnectionRefusedError):
            return TransportFailure.REFUSED
    text = " ".join(str(cause) for cause in _chain(error)).lower()
    if any(hint in text for hint in _DNS_HINTS):
        return TransportFailure.DNS
    if any(hint in text for hint in _TLS_HINTS):
        return TransportFailure.TLS
    if any(hint in text for hint in _REFUSED_HINTS):
        return TransportFailure.REFUSED
    if isinstance(error, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        return TransportFailure.CONNECT_TIMEOUT
    return TransportFailure.UNREACHABLE
