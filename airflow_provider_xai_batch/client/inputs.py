"""Accepted input shapes -> native batch requests, with deterministic ids and precise errors.

Three shapes are accepted for one request, in XCom lists and JSONL lines alike:

1. native: ``{"batch_request_id": "...", "batch_request": {"<kind>": {...}}}``
2. JSONL/OpenAI style: ``{"custom_id": "...", "method": "POST", "url": "/v1/chat/completions", "body": {...}}``
3. short: ``{"custom_id": "...", "body": {...}}`` (a chat completion)

Any of them may carry a top-level ``"metadata"`` object beside the request: the caller's own fields
(a document id, a customer, a split). It is checked like the request (exact JSON, a size limit
counted here), kept on the normalised request but never sent to xAI, and comes back on the
request's result row. See :func:`request_metadata`.

>>> normalise_request({"custom_id": "q1", "body": {"model": "grok-4.3", "messages": ["Hi"]}},
...                   source="requests", position=0)
{'batch_request_id': 'q1', 'batch_request': {'chat_get_completion': {'model': 'grok-4.3', 'messages': ['Hi']}}}

Everything is pure and streaming: a generator of a million requests is never materialised.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any

import msgspec

from airflow_provider_xai_batch.client.errors import XAIInputError
from airflow_provider_xai_batch.client.exact_json import MAX_NESTING_DEPTH, MAX_REQUEST_DEPTH, json_problem

NativeRequest = dict[str, Any]

KINDS: frozenset[str] = frozenset(
    {
        "chat_get_completion",
        "responses",
        "image_generation",
        "image_edit",
        "video_generation",
        "video_extension",
    }
)

# The key a successful result is filed under, per request kind: chat and responses requests share
# one, as do image generations and edits, and the video kinds (docs: the batch API's results).
RESULT_KEYS: Mapping[str, str] = {
    "chat_get_completion": "chat_get_completion",
    "responses": "chat_get_completion",
    "image_generation": "image_generation",
    "image_edit": "image_generation",
    "video_generation": "video_generation",
    "video_extension": "video_generation",
}

URL_TO_KIND: Mapping[str, str] = {
    "/v1/chat/completions": "chat_get_completion",
    "/v1/responses": "responses",
    "/v1/images/generations": "image_generation",
    "/v1/images/edits": "image_edit",
    "/v1/videos/generations": "video_generation",
    "/v1/videos": "video_generation",
    "/v1/videos/edits": "video_generation",
    "/v1/videos/extensions": "video_extension",
}

MAX_ID_LENGTH = 255
# Metadata travels beside the request, never to xAI; it is written to every result row, so it is
# kept small enough that a million rows of it stay a modest file.
MAX_METADATA_BYTES = 64 * 1024
METADATA_KEY = "metadata"
DEFAULT_MAX_REQUEST_BYTES = 25_000_000
# Generated ids carry the list index or line number padded to this many digits, so that sorting ids
# (a results file sorted by id) gives input order. Nine digits keep that order up to 999,999,999
# items or lines, a thousand times the million requests above which the service may throttle a
# batch; past that the number only grows longer: ids stay unique, only their sort order differs.
POSITION_DIGITS = 9
_GENERATED_ID_LENGTH = 64
_SLUG = re.compile(r"[^A-Za-z0-9_.-]+")
_NUMBERED_LABEL = re.compile(r"([A-Za-z]+) (\d+)")
_HALF_SURROGATE = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])")


def _kind_for_url(url: Any, *, source: str, where: str) -> str:
    if not isinstance(url, str):
        raise XAIInputError(
            f"'url' must be a string, got {type(url).__name__}", source=source, position=where
        )
    path = url.strip()
    if "://" in path:  # a full URL such as https://api.x.ai/v1/chat/completions
        path = "/" + path.split("://", 1)[1].split("/", 1)[-1]
    path = path.rstrip("/") or "/"
    kind = URL_TO_KIND.get(path)
    if kind is None:
        known = ", ".join(sorted(URL_TO_KIND))
        raise XAIInputError(
            f"unknown endpoint url {url!r} (expected one of {known})", source=source, position=where
        )
    return kind


def _validated_body(body: Any, kind: str, *, source: str, where: str) -> dict[str, Any]:
    if body is None:
        raise XAIInputError("the request has no body", source=source, position=where)
    if not isinstance(body, dict):
        raise XAIInputError(
            f"the request body must be a JSON object, got {type(body).__name__}",
            source=source,
            position=where,
        )
    if not body:
        raise XAIInputError("the request body is empty", source=source, position=where)
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise XAIInputError("the request body has no 'model' string", source=source, position=where)
    if kind == "chat_get_completion":
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise XAIInputError(
                "a chat completion needs a non-empty 'messages' list", source=source, position=where
            )
    if "stream" in body:  # streaming has no meaning in a batch; the service would reject or ignore it
        body = {key: value for key, value in body.items() if key != "stream"}
    validated: dict[str, Any] = body
    return validated


def _validated_id(value: Any, *, source: str, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise XAIInputError(
            f"the request id must be a string, got {type(value).__name__}", source=source, position=where
        )
    if not value.strip():
        raise XAIInputError("the request id is empty", source=source, position=where)
    if len(value) > MAX_ID_LENGTH:
        raise XAIInputError(
            f"the request id is {len(value)} characters long (at most {MAX_ID_LENGTH})",
            source=source,
            position=where,
        )
    return value


class NormalisedRequest(dict[str, Any]):
    """A native request this module built and validated: normalising it again returns it as is.

    It remembers where it came from (``source``, ``position``), so that a problem found later, when
    it is encoded, is reported at the user's file line or list item whichever path encodes it.
    """

    __slots__ = ("metadata", "position", "source")
    source: str
    position: str
    metadata: bytes | None


def request_metadata(request: NativeRequest) -> bytes | None:
    """The request's ``"metadata"`` as compact JSON bytes, or ``None`` when its input item had none.

    >>> request = normalise_request({"custom_id": "q1", "metadata": {"doc": 7},
    ...     "body": {"model": "m", "messages": ["Hi"]}}, source="requests", position=0)
    >>> request_metadata(request), "metadata" in request
    (b'{"doc":7}', False)
    """
    return getattr(request, "metadata", None)


def _validated_metadata(value: Any, *, source: str, where: str) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise XAIInputError(
            f"'metadata' must be a JSON object, got {type(value).__name__}", source=source, position=where
        )
    problem = json_problem({METADATA_KEY: value})
    if problem is None:
        try:
            encoded = msgspec.json.encode(value)
        except (TypeError, ValueError, RecursionError) as exc:
            problem = f"metadata cannot be encoded as JSON ({type(exc).__name__}: {exc})"
    if problem is not None:
        raise XAIInputError(problem.replace("the request", "the metadata"), source=source, position=where)
    if len(encoded) > MAX_METADATA_BYTES:
        raise XAIInputError(
            f"'metadata' is {len(encoded):,} bytes, over the {MAX_METADATA_BYTES:,}-byte limit",
            source=source,
            position=where,
        )
    return encoded


def normalise_request(request: Any, *, source: str, position: int | str) -> NativeRequest:
    """Turn one request in any accepted shape into the native form, or raise :class:`XAIInputError`.

    ``position`` is a 0-based list index (int) or a ready label such as ``"line 7"``. A request
    without an id gets :func:`generated_request_id` for that source and position. A top-level
    ``"metadata"`` object is checked and kept aside (:func:`request_metadata`), not in the request.
    """
    if type(request) is NormalisedRequest:
        return request
    where = position if isinstance(position, str) else f"item {position}"
    quick = _quick_jsonl_style(request, source, where)
    if quick is not None:
        return quick
    if not isinstance(request, dict):
        raise XAIInputError(
            f"a request must be a JSON object, got {type(request).__name__}", source=source, position=where
        )
    if "batch_request" in request:
        request_id = _validated_id(request.get("batch_request_id"), source=source, where=where)
        wrapped = request["batch_request"]
        if not isinstance(wrapped, dict) or len(wrapped) != 1:
            raise XAIInputError(
                "'batch_request' must hold exactly one kind key, such as 'chat_get_completion'",
                source=source,
                position=where,
            )
        kind, body = next(iter(wrapped.items()))
        if kind not in KINDS:
            raise XAIInputError(
                f"unknown request kind {kind!r} (expected one of {', '.join(sorted(KINDS))})",
                source=source,
                position=where,
            )
    elif "body" in request or "url" in request or "custom_id" in request:
        request_id = _validated_id(request.get("custom_id"), source=source, where=where)
        method = request.get("method", "POST")
        if not isinstance(method, str) or method.upper() != "POST":
            raise XAIInputError(f"unsupported method {method!r} (only POST)", source=source, position=where)
        kind = (
            _kind_for_url(request["url"], source=source, where=where)
            if "url" in request
            else "chat_get_completion"
        )
        body = request.get("body")
    else:
        raise XAIInputError(
            "not an accepted request shape: expected 'batch_request' (native), or 'custom_id'/'url'/'body' "
            "(JSONL style)",
            source=source,
            position=where,
        )
    body = _validated_body(body, kind, source=source, where=where)
    metadata = _validated_metadata(request.get(METADATA_KEY), source=source, where=where)
    if request_id is None:
        request_id = generated_request_id(source, position)
    normalised = NormalisedRequest(batch_request_id=request_id, batch_request={kind: body})
    normalised.source, normalised.position, normalised.metadata = source, where, metadata
    return normalised


def _quick_jsonl_style(request: Any, source: str, where: str) -> NormalisedRequest | None:
    """The common case, a chat request ``{"custom_id": ..., "body": {...}}`` with nothing to fix, in
    one pass of checks; ``None`` for anything else, which :func:`normalise_request` checks in full
    (and words the error for). Run once per request of an ingest of millions, so kept to the point.
    """
    if type(request) is not dict or "url" in request or "batch_request" in request or METADATA_KEY in request:
        return None
    request_id, body = request.get("custom_id"), request.get("body")
    if type(request_id) is not str or not 0 < len(request_id) <= MAX_ID_LENGTH or request_id.isspace():
        return None
    if type(body) is not dict or "stream" in body or request.get("method", "POST") != "POST":
        return None
    model, messages = body.get("model"), body.get("messages")
    if type(model) is not str or not model or model.isspace() or type(messages) is not list or not messages:
        return None
    normalised = NormalisedRequest(batch_request_id=request_id, batch_request={"chat_get_completion": body})
    normalised.source, normalised.position, normalised.metadata = source, where, None
    return normalised


def generated_request_id(source: str, position: int | str) -> str:
    """A deterministic id for a request that has none: unique per (source, position), <= 64 characters.

    The position is zero-padded to :data:`POSITION_DIGITS` digits, so that ids sort in input order.

    >>> generated_request_id("s3://bucket/in/part-1.jsonl", "line 12")
    'part-1.jsonl-c488cc1a-line-000000012'
    >>> generated_request_id("add_rows.requests", 7)
    'add_rows.requests-46eb0467-000000007'
    """
    if isinstance(position, int):
        label = f"{position:0{POSITION_DIGITS}d}"
    else:
        numbered = _NUMBERED_LABEL.fullmatch(str(position))
        label = (
            f"{numbered.group(1)}-{int(numbered.group(2)):0{POSITION_DIGITS}d}"
            if numbered
            else _SLUG.sub("-", str(position))
        )
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:8]
    stem = _SLUG.sub("-", source.rstrip("/").rsplit("/", 1)[-1]).strip("-") or "req"
    room = _GENERATED_ID_LENGTH - len(digest) - len(label) - 2
    return f"{stem[: max(room, 1)]}-{digest}-{label}"


# A reused encoder skips the per-call set-up of ``msgspec.json.encode`` (about a fifth of its time).
_ENCODE = msgspec.json.Encoder().encode


def encode_request(
    request: NativeRequest, *, source: str | None = None, position: str | None = None
) -> bytes:
    """The compact UTF-8 JSON encoding used on the wire (and for size checks).

    Only what JSON can carry exactly is encoded: NaN or Infinity anywhere, text with a lone
    surrogate, a value JSON has no form for, or nesting deeper than :data:`MAX_REQUEST_DEPTH` is an
    :class:`XAIInputError` naming the source and position (taken from a :class:`NormalisedRequest`
    when not given) and the place inside the request.

    msgspec (already required by Airflow's task SDK) encodes about ten times faster than ``json``,
    which keeps a million-request ingest bound by the network rather than by the CPU.

    >>> encode_request({"batch_request_id": "a", "batch_request": {"chat_get_completion": {"n": 1}}})
    b'{"batch_request_id":"a","batch_request":{"chat_get_completion":{"n":1}}}'
    >>> encode_request({"batch_request": {"responses": {"top_p": float("nan")}}}, source="s", position="item 3")
    Traceback (most recent call last):
    ...
    airflow_provider_xai_batch.client.errors.XAIInputError: s, item 3: body.top_p is nan: JSON has no NaN or Infinity
    """
    try:
        encoded = _ENCODE(request)
    except (TypeError, ValueError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
        raise _unencodable(request, exc, source, position) from None
    # msgspec writes NaN and Infinity as null and has no depth limit short of the interpreter's. Three
    # scans of the bytes rule both out for nearly every request before a walk in Python is needed
    # (``rfind`` because CPython searches short needles backwards about twice as fast as forwards).
    if encoded.rfind(b"null") >= 0 or encoded.count(b"{") + encoded.count(b"[") > MAX_REQUEST_DEPTH:
        _refuse_problem(request, source, position)
    return encoded


def request_digest(request: NativeRequest) -> bytes:
    """A digest of a request's content, independent of key order, to spot an id reused for other content."""
    try:
        canonical = msgspec.json.encode(request["batch_request"], order="sorted")
    except (TypeError, ValueError, RecursionError) as exc:
        raise _unencodable(request, exc, None, None) from None
    return hashlib.blake2b(canonical, digest_size=16).digest()


def _unencodable(request: Any, exc: BaseException, source: str | None, position: str | None) -> XAIInputError:
    problem = json_problem(request) or f"cannot be encoded as JSON ({type(exc).__name__}: {exc})"
    return _input_error(problem, request, source, position)


def _refuse_problem(request: Any, source: str | None, position: str | None) -> None:
    problem = json_problem(request)
    if problem is not None:
        raise _input_error(problem, request, source, position)


def _input_error(problem: str, request: Any, source: str | None, position: str | None) -> XAIInputError:
    return XAIInputError(
        problem,
        source=source or getattr(request, "source", None) or "requests",
        position=position or getattr(request, "position", None),
    )


def normalise_requests(requests: Iterable[Any], *, source: str = "requests") -> Iterator[NativeRequest]:
    """Normalise a stream of requests (list items, positions 0-based), lazily.

    >>> [r["batch_request_id"] for r in normalise_requests([{"body": {"model": "m", "messages": [1]}}])]
    ['requests-ec72420d-000000000']
    """
    if isinstance(requests, (str, bytes, Mapping)):
        raise XAIInputError(
            f"requests must be a list of request objects, got {type(requests).__name__}", source=source
        )
    for index, request in enumerate(requests):
        yield normalise_request(request, source=source, position=index)


def iter_jsonl(stream: IO[bytes], *, source: str, chunk_size: int = 1 << 20) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, parsed_object)`` from a JSONL byte stream, one line in memory at a time.

    Accepts what real files contain: a UTF-8 byte order mark, CRLF line ends, blank lines.
    Invalid UTF-8, invalid JSON and a truncated last line raise :class:`XAIInputError` with the line.
    """
    line_number = 0
    pending = b""
    while True:
        chunk = stream.read(chunk_size)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            line_number += 1
            parsed = _parse_line(raw, line_number, source=source)
            if parsed is not _BLANK:
                yield line_number, parsed
    if pending:
        line_number += 1
        parsed = _parse_line(pending, line_number, source=source, last=True)
        if parsed is not _BLANK:
            yield line_number, parsed


_BLANK: Any = object()


def _parse_line(raw: bytes, line_number: int, *, source: str, last: bool = False) -> Any:
    if line_number == 1 and raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    # One pass over the line for the common case: msgspec skips the whitespace around the JSON (a
    # CR included) and checks the UTF-8 of every string; only text outside strings, which is
    # invalid JSON anyway, and lines it refuses need a closer look, done on the slow path.
    if raw.isascii():
        try:
            return msgspec.json.decode(raw)
        except (msgspec.DecodeError, RecursionError):
            pass
    return _parse_line_slowly(raw, line_number, source=source, last=last)


def _parse_line_slowly(raw: bytes, line_number: int, *, source: str, last: bool) -> Any:
    where = f"line {line_number}"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise XAIInputError(
            f"invalid UTF-8 at byte {exc.start} of the line", source=source, position=where
        ) from None
    raw = raw.strip()
    if not raw:
        return _BLANK
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        reason = str(exc)
        complete = raw.endswith((b"}", b"]"))
        if "trailing characters" in reason:
            hint = " (something follows the JSON object on this line)"
        elif "truncated" in reason and complete and _HALF_SURROGATE.search(raw):
            hint = " (a \\u escape holds half of a surrogate pair, which is not text)"
        elif last and "truncated" in reason and not complete:
            hint = " (the last line looks truncated)"
        else:
            hint = ""
        raise XAIInputError(f"invalid JSON: {reason}{hint}", source=source, position=where) from None
    except RecursionError:
        raise XAIInputError(
            f"the line nests arrays and objects too deeply to read (at most {MAX_NESTING_DEPTH} levels)",
            source=source,
            position=where,
        ) from None


def normalise_jsonl(stream: IO[bytes], *, source: str) -> Iterator[NativeRequest]:
    """Parse and normalise a JSONL stream lazily; ids default to :func:`generated_request_id` per line."""
    for line_number, parsed in iter_jsonl(stream, source=source):
        yield normalise_request(parsed, source=source, position=f"line {line_number}")


def check_request_size(
    request: NativeRequest, encoded: bytes, limit: int, *, source: str, position: str
) -> None:
    """Refuse a single request larger than the service accepts (25 MB by default)."""
    if len(encoded) > limit:
        raise XAIInputError(
            f"request {request['batch_request_id']!r} is {len(encoded):,} bytes, over the {limit:,}-byte limit",
            source=source,
            position=position,
        )


class DuplicateIdChecker:
    """Spots one id used twice for different content, in about 100 bytes per request.

    Ids and contents are kept as 64-bit hashes, so a million requests cost tens of megabytes, not
    the requests themselves. Identical repeats are harmless (the service treats them as one
    request) and are reported so callers can skip them; different content under one id is an
    :class:`XAIInputError`.

    >>> checker = DuplicateIdChecker()
    >>> request = {"batch_request_id": "a", "batch_request": {"chat_get_completion": {"model": "m"}}}
    >>> checker.check(request, source="requests", position="item 0"), checker.check(request, source="requests", position="item 1")
    (True, False)
    """

    def __init__(self) -> None:
        self._seen: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def check(self, request: NativeRequest, *, source: str, position: str) -> bool:
        """Return True when the request is new, False for an identical repeat; raise on a conflict."""
        request_id = request["batch_request_id"]
        key = int.from_bytes(hashlib.blake2b(request_id.encode("utf-8"), digest_size=8).digest(), "big")
        content = int.from_bytes(request_digest(request)[:8], "big")
        earlier = self._seen.get(key)
        if earlier is None:
            self._seen[key] = content
            return True
        if earlier == content:
            return False
        raise XAIInputError(
            f"request id {request_id!r} appears earlier in the input with different content",
            source=source,
            position=position,
        )
