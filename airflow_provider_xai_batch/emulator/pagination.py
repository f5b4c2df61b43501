"""Opaque page tokens: the last id a page returned, so a token stays valid while adds go on."""

from __future__ import annotations

import base64
import binascii

from .errors import invalid_argument

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def encode_token(last_id: str) -> str:
    """
    >>> decode_token(encode_token("row-7"))
    'row-7'
    """
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_token(token: str | None) -> str | None:
    """The id a token stands for; ``None`` or ``""`` means the first page. Garbage answers 400."""
    if not token:
        return None
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid_argument("Invalid pagination_token") from None


def page_size(limit: int | None) -> int:
    """The page size to use: default for none, capped at the maximum; below 1 answers 400."""
    if limit is None:
        return DEFAULT_PAGE_SIZE
    if limit < 1:
        raise invalid_argument("limit must be a positive number")
    return min(limit, MAX_PAGE_SIZE)
