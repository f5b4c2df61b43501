"""JSON as strictly as the service reads it: RFC 8259 only, bounded nesting, text that is text.

Python's ``json`` accepts more than JSON: ``NaN`` and ``Infinity``, numbers that overflow to
infinity (``1e999``), ``\\ud800`` escapes that leave half a surrogate pair in a string, UTF-16 bytes,
and nesting up to the interpreter's recursion limit, past which it raises ``RecursionError``. The
service refuses all of these with a 400, so the emulator does too: a client that passes here passes
there.

Nesting is limited to :data:`MAX_JSON_DEPTH` levels of arrays and objects. The service does not
document its limit; 100 is the default recursion limit of the protobuf parsers behind
gRPC-transcoded JSON APIs such as xAI's, and far beyond any real request.

>>> parse_json(b'{"batch_requests": [{"n": 1.5}]}')
{'batch_requests': [{'n': 1.5}]}
>>> parse_json(b'{"temperature": NaN}')
Traceback (most recent call last):
...
airflow_provider_xai_batch.emulator.strict_json.InvalidJSON: NaN is not a JSON number
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_JSON_DEPTH = 100

_OPENERS = (b"[", b"{")
_AS_PARENTHESES = bytes.maketrans(b"[{]}", b"(())")
_NOT_STRUCTURE = bytes(set(range(256)) - set(b'[]{}"'))
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_BOM = "\ufeff"


class InvalidJSON(ValueError):
    """Text the service would not accept as JSON; the message says why, and where when it can."""


def parse_json(raw: bytes, *, allow_bom: bool = False) -> Any:
    """The value ``raw`` holds, or :class:`InvalidJSON`.

    ``allow_bom`` lets a UTF-8 byte order mark lead the text (the first line of an uploaded file).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidJSON(f"not UTF-8 text (byte {error.start})") from None
    if allow_bom and text.startswith(_BOM):
        text = text[1:]
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as error:
        raise InvalidJSON(_decode_problem(error, text)) from None
    except RecursionError:
        raise InvalidJSON(_too_deep()) from None
    # Fewer openers than the limit cannot nest past it: most bodies need no closer look.
    if sum(raw.count(opener) for opener in _OPENERS) > MAX_JSON_DEPTH and _deeper_than(raw, MAX_JSON_DEPTH):
        raise InvalidJSON(_too_deep())
    if _SURROGATE_ESCAPE.search(raw) is not None and _has_lone_surrogate(value):
        raise InvalidJSON("a \\u escape holds half of a surrogate pair, which is not text")
    return value


def _refuse_constant(name: str) -> Any:
    raise InvalidJSON(f"{name} is not a JSON number")


def _finite_float(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):
        raise InvalidJSON(f"the number {literal[:40]} is out of range")
    return number


def _decode_problem(error: json.JSONDecodeError, text: str) -> str:
    if error.msg == "Extra data":
        return f"trailing characters after the JSON value (column {error.colno})"
    # An unterminated string runs to the end of the text, wherever it started.
    if error.pos >= len(text.rstrip()) or error.msg.startswith("Unterminated string"):
        return f"the text ends before its JSON value does ({error.msg}); it looks truncated"
    return f"{error.msg} (column {error.colno})"


def _too_deep() -> str:
    return f"arrays and objects nested more than {MAX_JSON_DEPTH} levels deep"


def _deeper_than(raw: bytes, limit: int) -> bool:
    """Whether the arrays and objects of valid JSON text nest more than ``limit`` levels.

    Works on the bytes with a few whole-buffer operations rather than walking the parsed value,
    which would cost a second for a 25 MB add call: drop escaped backslashes and quotes, keep only
    brackets and quotes, drop what lies inside strings, then strip innermost pairs once per level.

    >>> _deeper_than(b'[{"a": "[[[["}, [[1]]]', 3), _deeper_than(b'[{"a": "]]"}, [[1]]]', 2)
    (False, True)
    """
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Adjacent quotes close one string and open the next (or hold an empty one): nothing outside a
    # string lies between them, so dropping them first leaves few strings for the split.
    brackets = unescaped.translate(_AS_PARENTHESES, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in brackets:
        brackets = b"".join(brackets.split(b'"')[::2])
    for _ in range(limit):
        if not brackets:
            return False
        brackets = brackets.replace(b"()", b"")
    return bool(brackets)


def _has_lone_surrogate(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
