"""Thin handlers: turn one decoded HTTP request into a call of the service and its JSON answer.

No sockets here (``http.py`` owns those), so every handler is a plain function of its input.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from airflow_provider_xai_batch.emulator.errors import ServiceError, code_text
from airflow_provider_xai_batch.emulator.faults import FaultPlan
from airflow_provider_xai_batch.emulator.media import parse_media_path
from airflow_provider_xai_batch.emulator.multipart import MultipartError, parse_multipart
from airflow_provider_xai_batch.emulator.request_log import RequestLog
from airflow_provider_xai_batch.emulator.routes import PUBLIC_ROUTES
from airflow_provider_xai_batch.emulator.state import BatchService
from airflow_provider_xai_batch.emulator.strict_json import InvalidJSON, parse_json

log = logging.getLogger("airflow_provider_xai_batch.emulator")

INCORRECT_KEY = "Incorrect API key provided. You can obtain an API key from https://console.x.ai."
MISSING_KEY = (
    "Missing or malformed Authorization header. Send 'Authorization: Bearer <api key>'; "
    "you can obtain an API key from https://console.x.ai."
)


@dataclass
class Incoming:
    """A request as the handlers see it: decoded path, query, lower-cased headers, whole body."""

    method: str
    path: str
    query: dict[str, list[str]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class Answer:
    """What to send back."""

    status: int
    body: bytes
    content_type: str = "application/json"


def json_answer(status: int, value: Any) -> Answer:
    return Answer(status, json.dumps(value, separators=(",", ":")).encode())


def error_answer(status: int, message: str, code: str | None = None) -> Answer:
    return json_answer(status, {"code": code or code_text(status), "error": message})


def injected_error_answer(status: int) -> Answer:
    """The answer of a fault: what the real service says in that situation."""
    if status == 429:
        return error_answer(429, "The service is temporarily at capacity. Please try again later.")
    try:
        message = HTTPStatus(status).description or HTTPStatus(status).phrase
    except ValueError:
        message = "Error"
    return error_answer(status, message)


class ApiHandlers:
    """Authenticates and dispatches API and control routes to the service.

    >>> from .state import BatchService
    >>> from .config import EmulatorConfig
    >>> handlers = ApiHandlers(BatchService(EmulatorConfig(api_key="k")), FaultPlan(), RequestLog())
    >>> handlers.handle("get_batch", {"batch_id": "nope"}, Incoming("GET", "/v1/batches/nope")).status
    401
    """

    def __init__(self, service: BatchService, faults: FaultPlan, request_log: RequestLog) -> None:
        self.service = service
        self.faults = faults
        self.request_log = request_log
        self._routes: dict[str, Callable[[dict[str, str], Incoming], Answer]] = {
            "create_batch": self._create_batch,
            "list_batches": self._list_batches,
            "get_batch": lambda params, _: json_answer(200, self.service.get_batch(params["batch_id"])),
            "cancel_batch": lambda params, _: json_answer(200, self.service.cancel_batch(params["batch_id"])),
            "add_requests": self._add_requests,
            "list_requests": self._list_requests,
            "list_results": self._list_results,
            "upload_file": self._upload_file,
            "list_files": self._list_files,
            "get_file": lambda params, _: json_answer(200, self.service.get_file(params["file_id"])),
            "delete_file": lambda params, _: json_answer(200, self.service.delete_file(params["file_id"])),
            "file_content": self._file_content,
            "media_file": self._media_file,
            "control_faults_list": lambda _, __: json_answer(200, {"pending": self.faults.pending()}),
            "control_faults_inject": self._inject_fault,
            "control_faults_clear": self._clear_faults,
            "control_stats": self._stats,
            "control_config_get": lambda _, __: json_answer(200, self.service.config.public_dict()),
            "control_config_patch": self._patch_config,
            "control_reset": self._reset,
            "control_clock": self._move_clock,
        }

    def handle(self, route: str, params: dict[str, str], request: Incoming) -> Answer:
        """Answer one request for a known route, authentication first."""
        refusal = None if route in PUBLIC_ROUTES else self.authenticate(request)
        if refusal is not None:
            return refusal
        try:
            return self._routes[route](params, request)
        except ServiceError as error:
            return json_answer(error.status, error.body())
        except Exception as error:
            # A fault of the emulator itself: the client gets the service's 500, not a dropped
            # connection, and the console one line rather than a traceback.
            log.warning("%s failed inside the emulator: %s: %s", route, type(error).__name__, error)
            return error_answer(500, "Internal error encountered")

    def authenticate(self, request: Incoming) -> Answer | None:
        """``None`` when the key is right; else the refusal (401 missing/garbled, 400 wrong key)."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return error_answer(401, MISSING_KEY)
        # The key is compared in constant time and never repeated back.
        if not hmac.compare_digest(token.encode(), self.service.config.api_key.encode()):
            return error_answer(400, INCORRECT_KEY)
        return None

    # -- API routes ------------------------------------------------------------------------------

    def _create_batch(self, _: dict[str, str], request: Incoming) -> Answer:
        body = _json_object(request)
        return json_answer(200, self.service.create_batch(body.get("name"), body.get("input_file_id")))

    def _list_batches(self, _: dict[str, str], request: Incoming) -> Answer:
        limit, token = _paging(request)
        return json_answer(200, self.service.list_batches(limit, token))

    def _add_requests(self, params: dict[str, str], request: Incoming) -> Answer:
        body = _json_object(request)
        if "batch_requests" not in body:
            raise ServiceError.of(400, "batch_requests is required")
        return json_answer(200, self.service.add_requests(params["batch_id"], body["batch_requests"]))

    def _list_requests(self, params: dict[str, str], request: Incoming) -> Answer:
        limit, token = _paging(request)
        return json_answer(200, self.service.list_batch_requests(params["batch_id"], limit, token))

    def _list_results(self, params: dict[str, str], request: Incoming) -> Answer:
        limit, token = _paging(request)
        return Answer(200, self.service.list_results_json(params["batch_id"], limit, token))

    def _upload_file(self, _: dict[str, str], request: Incoming) -> Answer:
        try:
            parts = parse_multipart(request.body, request.headers.get("content-type", ""))
        except MultipartError as error:
            raise ServiceError.of(400, str(error)) from None
        upload = None
        expires_after: int | None = None
        for part in parts:
            if part.name == "file":
                upload = part
            elif part.name == "expires_after":
                # The service reads the form as a stream: a setting after the file comes too late.
                if upload is not None:
                    raise ServiceError.of(400, "expires_after must come before the file part")
                try:
                    expires_after = int(part.content.decode().strip())
                except (UnicodeDecodeError, ValueError):
                    raise ServiceError.of(400, "expires_after must be a number of seconds") from None
        if upload is None:
            raise ServiceError.of(400, "file is required")
        filename = upload.filename or "upload.jsonl"
        return json_answer(200, self.service.upload_file(filename, upload.content, expires_after))

    def _list_files(self, _: dict[str, str], request: Incoming) -> Answer:
        limit, token = _paging(request)
        return json_answer(200, self.service.list_files(limit, token))

    def _file_content(self, params: dict[str, str], _: Incoming) -> Answer:
        return Answer(200, self.service.file_content(params["file_id"]), "application/octet-stream")

    def _media_file(self, _: dict[str, str], request: Incoming) -> Answer:
        found = parse_media_path(request.path)
        if found is None:
            raise ServiceError.of(404, "No such media")
        content_type, content = self.service.media_file(*found)
        return Answer(200, content, content_type)

    # -- control routes --------------------------------------------------------------------------

    def _inject_fault(self, _: dict[str, str], request: Incoming) -> Answer:
        body = _json_object(request)
        unknown = set(body) - {"route", "status", "drop", "latency_ms", "count"}
        if unknown or "route" not in body:
            raise ServiceError.of(400, "a fault is {route, status?, drop?, latency_ms?, count?}")
        try:
            self.faults.inject(
                body["route"],
                status=body.get("status"),
                drop=body.get("drop"),
                latency_ms=body.get("latency_ms", 0),
                count=body.get("count", 1),
            )
        except (TypeError, ValueError) as error:
            raise ServiceError.of(400, str(error)) from None
        return json_answer(200, {"pending": self.faults.pending()})

    def _clear_faults(self, _: dict[str, str], __: Incoming) -> Answer:
        self.faults.clear()
        return json_answer(200, {"pending": []})

    def _stats(self, _: dict[str, str], __: Incoming) -> Answer:
        stats = self.faults.stats()
        stats["service"] = self.service.counts()
        stats["logged_requests"] = len(self.request_log)
        return json_answer(200, stats)

    def _patch_config(self, _: dict[str, str], request: Incoming) -> Answer:
        body = _json_object(request)
        if "api_key" in body:
            raise ServiceError.of(400, "api_key cannot be changed while running")
        try:
            self.service.config.update(body)
        except ValueError as error:
            raise ServiceError.of(400, str(error)) from None
        return json_answer(200, self.service.config.public_dict())

    def _reset(self, _: dict[str, str], __: Incoming) -> Answer:
        self.service.reset()
        self.faults.reset()
        self.request_log.clear()
        return json_answer(200, {})

    def _move_clock(self, _: dict[str, str], request: Incoming) -> Answer:
        body = _json_object(request)
        clock = self.service.clock
        set_time, advance = getattr(clock, "set", None), getattr(clock, "advance", None)
        if not (callable(set_time) and callable(advance)):
            raise ServiceError.of(412, "The emulator runs on the system clock; start it with a ManualClock")
        try:
            if "set" in body:
                set_time(float(body["set"]))
            if "advance" in body:
                advance(float(body["advance"]))
        except (TypeError, ValueError) as error:
            raise ServiceError.of(400, str(error)) from None
        return json_answer(200, {"now": clock.now()})


def _json_object(request: Incoming) -> dict[str, Any]:
    if not request.body.strip():
        return {}
    try:
        value = parse_json(request.body)
    except InvalidJSON as error:
        raise ServiceError.of(400, f"Request body is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ServiceError.of(400, "Request body must be a JSON object")
    return value


def _paging(request: Incoming) -> tuple[int | None, str | None]:
    # Older documentation calls the page size `page_size`; both are understood.
    values = request.query.get("limit") or request.query.get("page_size")
    raw = values[0] if values else None
    limit = None
    if raw is not None:
        try:
            limit = int(raw)
        except ValueError:
            raise ServiceError.of(400, "limit must be an integer") from None
    tokens = request.query.get("pagination_token")
    token = tokens[0] if tokens else None
    return limit, token
