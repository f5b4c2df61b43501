"""Reading the emulator's state directly, and ``xai`` connections pointing at it."""

from __future__ import annotations

import json
import threading
import time
from typing import Any


def held_request_ids(emulator: Any, batch_id: str) -> list[str]:
    """Every request id the emulator holds for a batch, in submission order."""
    ids: list[str] = []
    token = None
    while True:
        page = emulator.service.list_batch_requests(batch_id, limit=1000, token=token)
        ids.extend(row["batch_request_id"] for row in page["batch_request_metadata"])
        token = page.get("pagination_token")
        if not token:
            return ids


def all_batches(emulator: Any) -> list[dict[str, Any]]:
    return list(emulator.service.list_batches(limit=1000)["batches"])


def connection_env(emulator: Any, *, api_key: str | None = None, **extra: Any) -> str:
    """The JSON of an ``xai`` connection to ``emulator`` (for ``AIRFLOW_CONN_...`` variables)."""
    conn: dict[str, Any] = {
        "conn_type": "xai",
        "password": api_key if api_key is not None else emulator.config.api_key,
        "host": emulator.url,
    }
    if extra:
        conn["extra"] = extra
    return json.dumps(conn)


class TickingClock:
    """An emulator clock that moves one second each time it is read.

    Processing then advances call by call, whatever the wall clock does, so every wait sees the
    batch part-way however slowly the machine starts its tasks.
    """

    def __init__(self) -> None:
        self._now = time.time()  # batches expire a day after creation, judged by the real date
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            self._now += 1.0
            return self._now
