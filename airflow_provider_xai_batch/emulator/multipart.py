"""Just enough ``multipart/form-data`` for file uploads, without copying a 200 MB body twice."""

from __future__ import annotations

import re
from dataclasses import dataclass

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_PARAM = re.compile(r'(\w+)\*?="((?:[^"\\]|\\.)*)"|(\w+)=([^;\s]+)')


class MultipartError(ValueError):
    """The body is not well-formed ``multipart/form-data``."""


@dataclass(frozen=True)
class Part:
    """One form field: its name, the filename if it is a file, and its bytes."""

    name: str
    filename: str | None
    content: bytes


def boundary_of(content_type: str) -> str:
    if not content_type.lower().startswith("multipart/form-data"):
        raise MultipartError("expected a multipart/form-data body")
    found = _BOUNDARY.search(content_type)
    if found is None:
        raise MultipartError("multipart/form-data without a boundary")
    return found.group(1)


def parse_multipart(body: bytes, content_type: str) -> list[Part]:
    """The parts of a form, in the order they were sent (the order matters to the upload route).

    >>> head = b'Content-Disposition: form-data; name="file"; filename="a.jsonl"'
    >>> body = b"--b\\r\\n" + head + b"\\r\\n\\r\\n{}\\r\\n--b--\\r\\n"
    >>> parse_multipart(body, "multipart/form-data; boundary=b")
    [Part(name='file', filename='a.jsonl', content=b'{}')]
    """
    delimiter = b"--" + boundary_of(content_type).encode("latin-1")
    position = body.find(delimiter)
    if position < 0:
        raise MultipartError("multipart body without its boundary")
    position += len(delimiter)
    parts: list[Part] = []
    while True:
        if body.startswith(b"--", position):
            return parts
        if not body.startswith(b"\r\n", position):
            raise MultipartError("malformed multipart boundary line")
        position += 2
        end = body.find(b"\r\n" + delimiter, position)
        if end < 0:
            raise MultipartError("multipart body ends before its closing boundary")
        header_end = body.find(b"\r\n\r\n", position, end)
        if header_end < 0:
            # A part may have no headers at all, then the blank line follows the boundary at once.
            if not body.startswith(b"\r\n", position):
                raise MultipartError("multipart part without a blank line after its headers")
            header_end, headers = position - 2, ""
        else:
            headers = body[position:header_end].decode("utf-8", "replace")
        name, filename = _disposition(headers)
        parts.append(Part(name=name, filename=filename, content=body[header_end + 4 : end]))
        position = end + 2 + len(delimiter)


def _disposition(headers: str) -> tuple[str, str | None]:
    for line in headers.split("\r\n"):
        key, _, value = line.partition(":")
        if key.strip().lower() != "content-disposition":
            continue
        params: dict[str, str] = {}
        for quoted_key, quoted, bare_key, bare in _PARAM.findall(value):
            params[(quoted_key or bare_key).lower()] = quoted if quoted_key else bare
        if "name" not in params:
            break
        return params["name"], params.get("filename")
    raise MultipartError("multipart part without a Content-Disposition name")
