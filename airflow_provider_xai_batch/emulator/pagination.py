"""Opaque page tokens: the last id a page returned, so a token stays valid while adds go on.

A token is bound to the list it came from (batches, files, or one batch's requests or results) and
carries a keyed checksum, so that garbage, a token edited by hand or one from another list answers
400 ``Invalid pagination_token`` on every list route, as the service does, instead of some page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from airflow_provider_xai_batch.emulator.errors import invalid_argument

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
_CHECK_BYTES = 8
# Per process: tokens are only good for the emulator that issued them, like a service's own.
_KEY = os.urandom(16)


def encode_token(last_id: str, scope: str) -> str:
    """A token for the page after ``last_id`` in the list called ``scope``.

    >>> decode_token(encode_token("row-7", "results:batch_1"), "results:batch_1")
    'row-7'
    """
    data = last_id.encode("utf-8", "surrogatepass")
    return base64.urlsafe_b64encode(_check(scope, data) + data).decode().rstrip("=")


def decode_token(token: str | None, scope: str) -> str | None:
    """The id a token stands for; ``None`` or ``""`` means the first page. Anything else answers 400.

    >>> decode_token("bm90LWEtdG9rZW4", "batches")
    Traceback (most recent call last):
    ...
    airflow_provider_xai_batch.emulator.errors.ServiceError: 400 Client specified an invalid argument: Invalid pagination_token
    """
    if not token:
        return None
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
        check, data = raw[:_CHECK_BYTES], raw[_CHECK_BYTES:]
        if len(check) == _CHECK_BYTES and hmac.compare_digest(check, _check(scope, data)):
            return data.decode("utf-8", "surrogatepass")
    except (binascii.Error, UnicodeError, ValueError):
        pass
    raise invalid_argument("Invalid pagination_token")


def _check(scope: str, data: bytes) -> bytes:
    keyed = hashlib.blake2b(key=_KEY, digest_size=_CHECK_BYTES)
    keyed.update(scope.encode("utf-8", "surrogatepass") + b"\0" + data)
    return keyed.digest()


def page_size(limit: int | None) -> int:
    """The page size to use: default for none, capped at the maximum; below 1 answers 400."""
    if limit is None:
        return DEFAULT_PAGE_SIZE
    if limit < 1:
        raise invalid_argument("limit must be a positive number")
    return min(limit, MAX_PAGE_SIZE)
