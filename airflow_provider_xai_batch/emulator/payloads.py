"""What one batch request is and what its result looks like, as pure functions.

A request is boiled down on arrival to a ``PreparedRequest``: its digest (for idempotent re-adds)
and the few facts its result depends on. The body itself is not kept, so a batch of a million
requests costs a small fraction of its JSON; results are rendered from these facts when read.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import uuid
from collections.abc import Collection, Mapping
from json.encoder import encode_basestring_ascii
from typing import Any, NamedTuple

from airflow_provider_xai_batch.emulator.media import media_bytes, media_path

KINDS: tuple[str, ...] = (
    "chat_get_completion",
    "responses",
    "image_generation",
    "image_edit",
    "video_generation",
    "video_extension",
)

# The gRPC method each kind runs as; shown in request metadata.
ENDPOINTS: dict[str, str] = {
    "chat_get_completion": "xai_api.Chat/GetCompletion",
    "responses": "xai_api.Responses/CreateResponse",
    "image_generation": "xai_api.Image/GenerateImage",
    "image_edit": "xai_api.Image/EditImage",
    "video_generation": "xai_api.Video/GenerateVideo",
    "video_extension": "xai_api.Video/ExtendVideo",
}

# The key a successful result is filed under: chat and responses share one, as do images and videos.
RESULT_KEYS: dict[str, str] = {
    "chat_get_completion": "chat_get_completion",
    "responses": "chat_get_completion",
    "image_generation": "image_generation",
    "image_edit": "image_generation",
    "video_generation": "video_generation",
    "video_extension": "video_generation",
}

# JSONL lines name the REST endpoint; each maps onto one kind. Written out here rather than taken
# from the client, so that the stand-in checks the client instead of sharing its mistakes.
URL_KINDS: dict[str, str] = {
    "/v1/chat/completions": "chat_get_completion",
    "/v1/responses": "responses",
    "/v1/images/generations": "image_generation",
    "/v1/images/edits": "image_edit",
    "/v1/videos/generations": "video_generation",
    "/v1/videos": "video_generation",
    "/v1/videos/edits": "video_generation",
    "/v1/videos/extensions": "video_extension",
}

TOKEN_LIMIT_KEYS: tuple[str, ...] = ("max_tokens", "max_completion_tokens", "max_output_tokens")
FAIL_MARKER = "[[fail]]"
_FAIL_MARKER_BYTES = FAIL_MARKER.encode()
# A passing failure: the request fails with an internal error the first time the service processes
# it, and succeeds when the same request comes again in a later batch.
TRANSIENT_FAIL_MARKER = "[[fail-transient]]"
_TRANSIENT_FAIL_MARKER_BYTES = TRANSIENT_FAIL_MARKER.encode()
SNIPPET_CHARS = 60
ANSWER_PREFIX = "Emulated answer to: "

# Prices in ticks (1 tick = 1e-10 USD), loosely after xAI's list prices.
PROMPT_TICKS_PER_TOKEN = 2_000
COMPLETION_TICKS_PER_TOKEN = 5_000
IMAGE_TICKS = 200_000_000
VIDEO_TICKS = 500_000_000
VIDEO_SECONDS = 6
MAX_IMAGES = 10


class InvalidRequest(Exception):
    """A request the add call (or file validation) rejects outright; ``message`` is xAI's text."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class PreparedRequest(NamedTuple):
    """The facts kept about one accepted request.

    >>> prepared = prepare_request(
    ...     "row-1",
    ...     {"chat_get_completion": {"model": "grok-4.3", "messages": [{"role": "user", "content": "Hi"}]}},
    ...     supported_models={"grok-4.3"},
    ... )
    >>> (prepared.kind, prepared.model, prepared.snippet, prepared.fixed_error)
    ('chat_get_completion', 'grok-4.3', 'Hi', None)
    """

    batch_request_id: str
    kind: str
    model: str
    digest: bytes
    snippet: str
    prompt_tokens: int
    image_count: int
    b64_images: bool
    # Set when the request is bound to fail while processing (found then, not when added).
    fixed_error: str | None
    # The prompt holds TRANSIENT_FAIL_MARKER: fails once, then succeeds in a later batch.
    fails_transiently: bool = False


# One encoder for every request: json.dumps would build a new one per call when options are given.
# NaN and Infinity are refused: the HTTP layer never lets them in, and in-process callers get the same.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_json(value: Any) -> bytes:
    """Key-order-independent JSON, so equal content always has an equal digest."""
    return _CANONICAL.encode(value).encode()


def content_digest(canonical: bytes) -> bytes:
    return hashlib.blake2b(canonical, digest_size=16).digest()


def given_or_new_request_id(value: Any) -> str | None:
    """The id a request names, a fresh ``batch_request_<uuid>`` when it names none (absent or
    empty), ``None`` when it names something that is not a string (the caller's error to raise).

    >>> given_or_new_request_id("q1"), given_or_new_request_id(7), given_or_new_request_id("")[:14]
    ('q1', None, 'batch_request_')
    """
    if value is None or value == "":
        return f"batch_request_{uuid.uuid4()}"
    return value if isinstance(value, str) else None


def prepare_request(
    batch_request_id: str,
    batch_request: Any,
    *,
    supported_models: Collection[str],
    max_request_bytes: int = 25_000_000,
) -> PreparedRequest:
    """Validate one ``batch_request`` (``{"<kind>": body}``) and keep what its result needs.

    Raises ``InvalidRequest`` with the service's message when the add call must be rejected.
    """
    if not isinstance(batch_request, dict) or len(batch_request) != 1:
        raise InvalidRequest(f"batch_request must hold exactly one of: {', '.join(KINDS)}")
    ((kind, body),) = batch_request.items()
    if kind not in KINDS:
        raise InvalidRequest(f"Unknown batch_request kind {kind!r}; expected one of: {', '.join(KINDS)}")
    if not isinstance(body, dict):
        raise InvalidRequest(f"batch_request.{kind} must be a JSON object")
    # `stream` means nothing in a batch; dropping it before hashing makes it irrelevant to identity.
    if "stream" in body:
        body = {key: value for key, value in body.items() if key != "stream"}
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest(f"batch_request.{kind}.model is required")
    if model not in supported_models:
        raise InvalidRequest(f"Model {model} is not supported for batch processing.")
    try:
        canonical = canonical_json({kind: body})
    except (ValueError, RecursionError):  # called in-process with values no JSON body can hold
        raise InvalidRequest(f"batch_request.{kind} holds values that are not JSON") from None
    if len(canonical) > max_request_bytes:
        raise InvalidRequest(
            f"Request {batch_request_id} is {len(canonical)} bytes, "
            f"above the limit of {max_request_bytes} bytes"
        )
    texts, snippet_source = _prompt_texts(kind, body)
    prompt_chars = sum(len(text) for text in texts)
    image_count = 1
    if kind in ("image_generation", "image_edit"):
        count = body.get("n", 1)
        image_count = min(MAX_IMAGES, count) if isinstance(count, int) and count >= 1 else 1
    return PreparedRequest(
        batch_request_id=batch_request_id,
        kind=kind,
        model=model,
        digest=content_digest(canonical),
        snippet=snippet_source[:SNIPPET_CHARS],
        prompt_tokens=max(1, math.ceil(prompt_chars / 4)),
        image_count=image_count,
        b64_images=body.get("response_format") == "b64_json",
        fixed_error=_processing_error(kind, body, texts, canonical),
        fails_transiently=_TRANSIENT_FAIL_MARKER_BYTES in canonical,
    )


def _processing_error(kind: str, body: Mapping[str, Any], texts: list[str], canonical: bytes) -> str | None:
    for key in TOKEN_LIMIT_KEYS:
        value = body.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
            return f"Maximum number of tokens {key} must be positive but {key} = {value}"
    if kind == "chat_get_completion" and not texts:
        return "Invalid request content: messages must be a non-empty list"
    if kind in ("image_generation", "image_edit", "video_generation") and not texts:
        return "Invalid request content: prompt is required"
    if _FAIL_MARKER_BYTES in canonical:
        return f"Request failed while processing: the prompt contains {FAIL_MARKER}"
    return None


def _prompt_texts(kind: str, body: Mapping[str, Any]) -> tuple[list[str], str]:
    """All prompt text of a request, and the text its emulated answer echoes."""
    if kind == "chat_get_completion":
        return _message_texts(body.get("messages"))
    if kind == "responses":
        texts, echo = _message_texts(body.get("input"))
        instructions = body.get("instructions")
        if isinstance(instructions, str):
            texts.append(instructions)
        return texts, echo
    prompt = body.get("prompt")
    if isinstance(prompt, str) and prompt:
        return [prompt], prompt
    return [], ""


def _message_texts(messages: Any) -> tuple[list[str], str]:
    if isinstance(messages, str):
        return ([messages], messages) if messages else ([], "")
    if not isinstance(messages, list):
        return [], ""
    texts: list[str] = []
    echo = ""
    last_any = ""
    for message in messages:
        if not isinstance(message, dict):
            continue
        text = _content_text(message.get("content"))
        texts.append(text)
        last_any = text
        if message.get("role", "user") == "user":
            echo = text
    return texts, echo or last_any


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def answer_text(snippet: str) -> str:
    """The deterministic answer of a chat or responses request."""
    return ANSWER_PREFIX + snippet


def completion_tokens(snippet: str) -> int:
    return max(1, math.ceil(len(answer_text(snippet)) / 4))


def request_cost(kind: str, prompt_tokens: int, snippet: str, image_count: int) -> int:
    """Cost of one successful request in ticks."""
    if RESULT_KEYS[kind] == "chat_get_completion":
        return (
            prompt_tokens * PROMPT_TICKS_PER_TOKEN + completion_tokens(snippet) * COMPLETION_TICKS_PER_TOKEN
        )
    if RESULT_KEYS[kind] == "image_generation":
        return image_count * IMAGE_TICKS
    return VIDEO_TICKS


# A chat result is the bulk of any large batch, so its JSON is written from a template: reading a
# million results then costs a few microseconds each instead of building and encoding dicts.
_CHAT_TEMPLATE = (
    '{"chat_get_completion":{"id":"chatcmpl-%s","object":"chat.completion","created":%d,"model":%s,'
    '"choices":[{"index":0,"message":{"role":"assistant","content":%s},"finish_reason":"stop"}],'
    '"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d,"cost_in_usd_ticks":%d},'
    '"system_fingerprint":"fp_emulated"}}'
)


def render_response_json(
    *,
    kind: str,
    model: str,
    batch_id: str,
    batch_request_id: str,
    snippet: str,
    prompt_tokens: int,
    image_count: int,
    b64_images: bool,
    finished_at: float,
    media_base_url: str = "",
) -> str:
    """JSON text of ``batch_result.response`` for a successful request: ``{"<result key>": payload}``.

    >>> text = render_response_json(
    ...     kind="responses", model="grok-4.3", batch_id="b", batch_request_id="r", snippet='Say "hi"',
    ...     prompt_tokens=3, image_count=1, b64_images=False, finished_at=0.0,
    ... )
    >>> json.loads(text)["chat_get_completion"]["choices"][0]["message"]["content"]
    'Emulated answer to: Say "hi"'

    Image and video URLs point at ``media_base_url`` (the emulator's own address, which serves the
    files) when it is given, else at xAI's media hosts; ``b64_json`` images carry a real PNG.
    """
    result_key = RESULT_KEYS[kind]
    token = _result_token(batch_id, batch_request_id)
    cost = request_cost(kind, prompt_tokens, snippet, image_count)
    if result_key == "chat_get_completion":
        completion = completion_tokens(snippet)
        return _CHAT_TEMPLATE % (
            token,
            int(finished_at),
            quote_json(model),
            quote_json(answer_text(snippet)),
            prompt_tokens,
            completion,
            prompt_tokens + completion,
            cost,
        )
    payload: dict[str, Any]
    if result_key == "image_generation":
        if b64_images:
            images: list[dict[str, str]] = [
                {"b64_json": base64.b64encode(media_bytes(batch_id, batch_request_id, index, "png")).decode()}
                for index in range(image_count)
            ]
        else:
            images = [
                {
                    "url": _media_url(media_base_url, batch_id, batch_request_id, token, index, "png"),
                    "revised_prompt": "",
                }
                for index in range(image_count)
            ]
        payload = {"model": model, "data": images, "usage": {"cost_in_usd_ticks": cost}}
    else:
        payload = {
            "request_id": token,
            "model": model,
            "video": {
                "url": _media_url(media_base_url, batch_id, batch_request_id, token, 0, "mp4"),
                "duration": VIDEO_SECONDS,
            },
            "usage": {"cost_in_usd_ticks": cost},
        }
    return json.dumps({result_key: payload}, separators=(",", ":"))


def _media_url(base: str, batch_id: str, batch_request_id: str, token: str, index: int, ext: str) -> str:
    if base:
        return base.rstrip("/") + media_path(batch_id, batch_request_id, index, ext)
    # Without an address of its own (the service used in-process), URLs look like xAI's.
    if ext == "mp4":
        return f"https://vidgen.x.ai/xai-vidgen/emulated/{token}.mp4"
    return f"https://imgen.x.ai/xai-imgen/emulated/{token}-{index}.{ext}"


def quote_json(text: str) -> str:
    """``text`` as a JSON string literal (with its quotes), ASCII-escaped like ``json.dumps``."""
    return encode_basestring_ascii(text)


def _result_token(batch_id: str, batch_request_id: str) -> str:
    """A stable UUID-shaped id for one result, so re-reading a result gives identical JSON."""
    digest = hashlib.blake2b(f"{batch_id}\0{batch_request_id}".encode(), digest_size=16).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:]}"
