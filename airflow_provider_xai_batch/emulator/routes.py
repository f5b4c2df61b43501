"""The route table of the wire contract, and of the control API beside it."""

from __future__ import annotations

import re
from dataclasses import dataclass

_ID = r"(?P<{name}>[^/:]+)"
_BATCH = "/v1/batches/" + _ID.format(name="batch_id")
_FILE = "/v1/files/" + _ID.format(name="file_id")

# (method, path pattern, route name). Route names are what faults and counters speak of.
API_ROUTES: tuple[tuple[str, str, str], ...] = (
    ("POST", "/v1/batches", "create_batch"),
    ("GET", "/v1/batches", "list_batches"),
    ("GET", _BATCH, "get_batch"),
    # The cancel verb hangs off the id with a colon (gRPC transcoding), not a slash.
    ("POST", _BATCH + ":cancel", "cancel_batch"),
    ("POST", _BATCH + "/requests", "add_requests"),
    ("GET", _BATCH + "/requests", "list_requests"),
    ("GET", _BATCH + "/results", "list_results"),
    ("POST", "/v1/files", "upload_file"),
    ("GET", "/v1/files", "list_files"),
    ("GET", _FILE, "get_file"),
    ("DELETE", _FILE, "delete_file"),
    ("GET", _FILE + "/content", "file_content"),
    # Images and videos named by results, as xAI's media hosts serve them: no API key needed.
    ("GET", "/media/[^/]+/[^/]+", "media_file"),
    ("HEAD", "/media/[^/]+/[^/]+", "media_file"),
)

# Routes that answer without an API key, like a CDN.
PUBLIC_ROUTES: frozenset[str] = frozenset({"media_file"})

CONTROL_PREFIX = "/_emulator/"
CONTROL_ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", "/_emulator/faults", "control_faults_list"),
    ("POST", "/_emulator/faults", "control_faults_inject"),
    ("DELETE", "/_emulator/faults", "control_faults_clear"),
    ("GET", "/_emulator/stats", "control_stats"),
    ("GET", "/_emulator/config", "control_config_get"),
    ("PATCH", "/_emulator/config", "control_config_patch"),
    ("POST", "/_emulator/reset", "control_reset"),
    ("POST", "/_emulator/clock", "control_clock"),
)

_COMPILED = tuple(
    (method, re.compile(pattern), name) for method, pattern, name in API_ROUTES + CONTROL_ROUTES
)


@dataclass(frozen=True)
class RouteMatch:
    """The route a request asks for; ``name`` is ``None`` when nothing matched."""

    name: str | None
    params: dict[str, str]
    allowed_methods: tuple[str, ...] = ()

    @property
    def is_control(self) -> bool:
        return self.name is not None and self.name.startswith("control_")

    @property
    def is_api(self) -> bool:
        return self.name is not None and not self.is_control


def resolve(method: str, path: str) -> RouteMatch:
    """Match a decoded path (no query) against the table.

    >>> resolve("POST", "/v1/batches/batch_1:cancel")
    RouteMatch(name='cancel_batch', params={'batch_id': 'batch_1'}, allowed_methods=())
    >>> resolve("PUT", "/v1/batches").allowed_methods
    ('POST', 'GET')
    """
    if len(path) > 1:
        path = path.rstrip("/")
    allowed: list[str] = []
    for route_method, pattern, name in _COMPILED:
        found = pattern.fullmatch(path)
        if found is None:
            continue
        if route_method == method:
            return RouteMatch(name, found.groupdict())
        allowed.append(route_method)
    return RouteMatch(None, {}, tuple(allowed))
