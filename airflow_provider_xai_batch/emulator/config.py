"""Every knob of the emulator in one mutable place; the service reads it on each call."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_SUPPORTED_MODELS: tuple[str, ...] = (
    "grok-4.3",
    "grok-4.20-0309-reasoning",
    "grok-4.20-0309-non-reasoning",
    "grok-4-1-fast-reasoning",
    "grok-4-1-fast-non-reasoning",
    "grok-imagine-image",
    "grok-imagine-video",
)

FAULT_KINDS: tuple[str, ...] = ("429", "500", "503", "drop_before", "drop_after", "slow")


@dataclass
class EmulatorConfig:
    """Behaviour and limits of the emulated service. Change fields at any time; they apply at once.

    Rate limits of ``0`` switch that limit off. ``processing_rate`` is requests finished per second
    in each batch (``0`` finishes every request the moment it is added); a new rate applies to the
    work still pending. ``error_rate`` picks failing requests from a hash of seed, batch id and
    request id, fixed when a request is added. ``latency_ms`` delays every API answer (not the
    ``/_emulator/`` control routes).

    >>> config = EmulatorConfig(api_key="k", processing_rate=10)
    >>> config.update({"error_rate": 0.1, "supported_models": "grok-4.3,grok-x"})
    >>> (config.error_rate, config.supported_models)
    (0.1, ('grok-4.3', 'grok-x'))
    """

    api_key: str = "k"
    processing_rate: float = 0.0
    error_rate: float = 0.0
    latency_ms: float = 0.0
    seed: int = 0
    create_rate_limit: int = 2
    create_rate_window_seconds: float = 1.0
    add_rate_limit: int = 1000
    add_rate_window_seconds: float = 30.0
    max_request_bytes: int = 25_000_000
    max_add_call_bytes: int = 25_000_000
    max_file_requests: int = 50_000
    max_file_bytes: int = 200_000_000
    file_ingest_seconds: float = 1.0
    supported_models: tuple[str, ...] = DEFAULT_SUPPORTED_MODELS
    batch_ttl_days: int = 30
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = FAULT_KINDS
    slow_ms: float = 2000.0
    # Bodies of routes other than add calls and uploads are tiny; this only guards memory.
    max_other_body_bytes: int = 1_000_000
    request_log_size: int = 10_000
    # Adds fields the contract does not list (e.g. `cost_breakdown`), as the real service may.
    extra_fields: bool = True
    # Image and video URLs stop working this long after the media was made (xAI: one hour).
    media_ttl_seconds: float = 3600.0
    # Where result URLs point for media; empty means the emulator's own address once it listens.
    media_base_url: str = ""

    def __post_init__(self) -> None:
        self.update({})

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply ``changes`` (field name -> value), coercing JSON/CLI forms; all or nothing.

        Raises ``ValueError`` naming the first unknown field or bad value.
        """
        known = {item.name: item for item in dataclasses.fields(self)}
        coerced: dict[str, Any] = {}
        merged = {name: getattr(self, name) for name in known}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown emulator setting {name!r}")
            merged[name] = value
        for name, value in merged.items():
            coerced[name] = _coerce(name, value)
        _check(coerced)
        for name, value in coerced.items():
            object.__setattr__(self, name, value)

    def public_dict(self) -> dict[str, Any]:
        """Every setting except the API key, JSON-ready."""
        values = dataclasses.asdict(self)
        values.pop("api_key")
        for name in ("supported_models", "fault_kinds"):
            values[name] = list(values[name])
        return values


_FLOATS = {
    "processing_rate",
    "error_rate",
    "latency_ms",
    "create_rate_window_seconds",
    "add_rate_window_seconds",
    "file_ingest_seconds",
    "fault_rate",
    "slow_ms",
    "media_ttl_seconds",
}
_INTS = {
    "seed",
    "create_rate_limit",
    "add_rate_limit",
    "max_request_bytes",
    "max_add_call_bytes",
    "max_file_requests",
    "max_file_bytes",
    "batch_ttl_days",
    "max_other_body_bytes",
    "request_log_size",
}
_NAME_LISTS = {"supported_models", "fault_kinds"}


def _coerce(name: str, value: Any) -> Any:
    try:
        if name in _FLOATS:
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if name in _INTS:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError
            return int(value)
        if name in _NAME_LISTS:
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(str(item).strip() for item in items if str(item).strip())
        if name in ("api_key", "media_base_url"):
            if not isinstance(value, str):
                raise TypeError
            return value
        if name == "extra_fields":
            return bool(value)
    except (TypeError, ValueError):
        raise ValueError(f"invalid value for {name}") from None
    return value


def _check(values: Mapping[str, Any]) -> None:
    for name in ("error_rate", "fault_rate"):
        if not 0.0 <= values[name] <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1")
    for name in _FLOATS | (_INTS - {"seed"}):
        if values[name] < 0:
            raise ValueError(f"{name} must not be negative")
    unknown = set(values["fault_kinds"]) - set(FAULT_KINDS)
    if unknown:
        raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(FAULT_KINDS)}")


def connection_json(url: str, api_key: str, extra: Mapping[str, Any] | None = None) -> str:
    """An ``xai`` Airflow connection to the emulator at ``url`` as JSON, for ``AIRFLOW_CONN_<ID>``.

    >>> connection_json("http://127.0.0.1:8787", "k")
    '{"conn_type": "xai", "password": "k", "host": "http://127.0.0.1:8787"}'
    """
    conn: dict[str, Any] = {"conn_type": "xai", "password": api_key, "host": url}
    if extra:
        conn["extra"] = dict(extra)
    return json.dumps(conn)
