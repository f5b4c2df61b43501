"""What JSON can carry exactly, checked without recursion: the slow path of encoding a request.

msgspec encodes requests quickly but writes NaN and Infinity as ``null``, accepts no lone
surrogates or unknown objects (with an error that names no place) and nests as deep as the
interpreter lets it. :func:`json_problem` finds the first such value and names its place inside the
request, for :func:`airflow_provider_xai_batch.client.inputs.encode_request` to report at the
user's file line or list item.
"""

from __future__ import annotations

import math
import re
from typing import Any

import msgspec

# Levels of arrays and objects one add-call body may nest, as the emulator enforces it. The service
# does not document a limit; 100 is the default recursion limit of the protobuf parsers behind
# gRPC-transcoded JSON APIs such as xAI's, and no real prompt comes near it.
MAX_NESTING_DEPTH = 100
# A request sits two levels down in an add call (``{"batch_requests": [request]}``).
MAX_REQUEST_DEPTH = MAX_NESTING_DEPTH - 2

_BODY_PATH = re.compile(r"batch_request\.[^.\[]+")
_JSON_SCALARS = (str, int, float, bool, type(None))
# Sets are encoded as arrays, so what they hold is checked like any array's items.
_JSON_CONTAINERS = (dict, list, tuple, set, frozenset)


def json_problem(value: Any) -> str | None:
    """What keeps ``value`` from being sent as exactly this JSON, or ``None`` when nothing does.

    Walks the value without recursion, depth first in document order, and reports the first of: a
    non-finite number, text with a lone surrogate, a value the encoder has no JSON form for, nesting
    deeper than :data:`MAX_REQUEST_DEPTH`. Places read like ``body.messages[0].content``.

    >>> json_problem({"batch_request": {"chat_get_completion": {"messages": [{"content": 1j}]}}})
    'body.messages[0].content is a complex, which has no JSON form'
    >>> json_problem({"batch_request_id": "a", "batch_request": {"responses": {"n": 2}}}) is None
    True
    """
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, _JSON_CONTAINERS):
            if depth > MAX_REQUEST_DEPTH:
                return (
                    f"the request nests arrays and objects more than {MAX_REQUEST_DEPTH} levels deep "
                    f"(at {_place(path)}); an add call may nest at most {MAX_NESTING_DEPTH}"
                )
            if isinstance(item, dict):
                children = []
                for key, child in item.items():
                    if isinstance(key, str) and _has_surrogate(key):
                        return f"a key in {_place(path)} holds a lone surrogate, which is not text JSON can carry"
                    children.append((child, f"{path}.{key}" if path else str(key), depth + 1))
            else:
                children = [(child, f"{path}[{index}]", depth + 1) for index, child in enumerate(item)]
            stack.extend(reversed(children))
        elif isinstance(item, float) and not math.isfinite(item):
            return f"{_place(path)} is {item}: JSON has no NaN or Infinity"
        elif isinstance(item, str) and _has_surrogate(item):
            surrogate = next(char for char in item if 0xD800 <= ord(char) <= 0xDFFF)
            return f"{_place(path)} holds a lone surrogate ({surrogate!r}), which is not text JSON can carry"
        elif not isinstance(item, _JSON_SCALARS):
            try:
                msgspec.json.encode(item)
            except (TypeError, ValueError, RecursionError):
                return f"{_place(path)} is a {type(item).__name__}, which has no JSON form"
    return None


def _has_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _place(path: str) -> str:
    """A place inside a native request as the user thinks of it: in the body, or the request id."""
    if path == "batch_request_id":
        return "the request id"
    inside_body = _BODY_PATH.match(path)
    if inside_body is not None:
        return "body" + path[inside_body.end() :]
    return path or "the request"
