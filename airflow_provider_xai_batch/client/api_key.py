"""The API key as it is sent: surrounding whitespace removed, anything a header cannot carry refused.

Keys read from files or pasted into forms often end with a newline or spaces; those are removed. A
key that still holds a character an HTTP header cannot carry would otherwise fail deep inside the
HTTP library, whose error (and debug log) quotes the header, key included. It is refused here
instead, with an error that says what is wrong without showing any of the key.

>>> clean_api_key("  xai-abc123\\n")
'xai-abc123'
>>> clean_api_key("xai-abc\\u00e9")
Traceback (most recent call last):
...
airflow_provider_xai_batch.client.errors.XAIAuthenticationError: xAI API error 401: the API key cannot be sent: it contains a non-ASCII character; check the key (the connection's password or XAI_API_KEY)
"""

from __future__ import annotations

from airflow_provider_xai_batch.client.errors import XAIAuthenticationError


def _problems(key: str) -> list[str]:
    found: list[str] = []
    if any(not char.isascii() for char in key):
        found.append("a non-ASCII character")
    if any(char.isascii() and (ord(char) < 0x20 or ord(char) == 0x7F) for char in key):
        found.append("a control character")
    if any(char in " \t" for char in key):
        found.append("a space inside")
    return found


def clean_api_key(raw: str, *, origin: str | None = None) -> str:
    """The key to send, or :class:`XAIAuthenticationError` naming what is wrong, never the key."""
    key = raw.strip()
    problems = _problems(key)
    if problems:
        raise XAIAuthenticationError(
            401,
            None,
            f"the API key cannot be sent: it contains {' and '.join(problems)}; "
            "check the key (the connection's password or XAI_API_KEY)",
            origin=origin,
        )
    return key
