"""The service's error vocabulary: HTTP status plus the gRPC status text xAI puts in ``code``."""

from __future__ import annotations

# xAI fronts gRPC services, so the ``code`` field of an error body carries the gRPC status text that
# matches the HTTP status. Statuses the service never sends with a gRPC code (413) get a plain phrase.
CODE_TEXTS: dict[int, str] = {
    400: "Client specified an invalid argument",
    401: "The request does not have valid authentication credentials for the operation",
    403: "The caller does not have permission to execute the specified operation",
    404: "Some requested entity was not found",
    405: "Method not allowed",
    412: "The system is not in a state required for the operation's execution",
    413: "Request entity too large",
    429: "Some resource has been exhausted",
    500: "Internal error encountered",
    502: "Bad gateway",
    503: "The service is currently unavailable",
    504: "The deadline expired before the operation could complete",
}


def code_text(status: int) -> str:
    """The ``code`` text for an HTTP status.

    >>> code_text(429)
    'Some resource has been exhausted'
    """
    return CODE_TEXTS.get(status, "Unknown error")


class ServiceError(Exception):
    """A call the service refuses, as the wire contract spells it out.

    >>> error = ServiceError.of(404, "Batch batch_1 not found")
    >>> (error.status, error.code, error.message)
    (404, 'Some requested entity was not found', 'Batch batch_1 not found')
    >>> error.body()
    {'code': 'Some requested entity was not found', 'error': 'Batch batch_1 not found'}
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    @classmethod
    def of(cls, status: int, message: str) -> ServiceError:
        """An error whose ``code`` is the standard text for ``status``."""
        return cls(status, code_text(status), message)

    def body(self) -> dict[str, str]:
        """The JSON error body: ``{"code": ..., "error": ...}``."""
        return {"code": self.code, "error": self.message}


def invalid_argument(message: str) -> ServiceError:
    return ServiceError.of(400, message)


def permission_denied(message: str) -> ServiceError:
    return ServiceError.of(403, message)


def not_found(message: str) -> ServiceError:
    return ServiceError.of(404, message)


def failed_precondition(message: str) -> ServiceError:
    return ServiceError.of(412, message)


def resource_exhausted(message: str = "Rate limit exceeded") -> ServiceError:
    return ServiceError.of(429, message)
