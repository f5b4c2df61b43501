"""The real OpenLineage listener, writing every event of a ``dag.test()`` run to a JSON-lines file."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


def _clear_openlineage_settings() -> None:
    # The provider caches each setting on first use; the tests change them through the environment.
    from airflow.providers.openlineage import conf

    for value in vars(conf).values():
        clear = getattr(value, "cache_clear", None)
        if callable(clear) and getattr(value, "__module__", None) == conf.__name__:
            clear()


def _listener_manager() -> Any:
    try:
        from airflow.sdk.listener import get_listener_manager
    except ImportError:  # Airflow < 3.1
        from airflow.listeners.listener import get_listener_manager  # type: ignore[no-redef]
    return get_listener_manager()


@pytest.fixture
def lineage_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Route OpenLineage to a file transport; returns a reader of the events emitted so far."""
    pytest.importorskip("airflow.providers.openlineage", reason="the OpenLineage provider is not installed")
    from airflow.providers.openlineage.plugins.listener import get_openlineage_listener

    events_file = tmp_path / "openlineage.jsonl"
    monkeypatch.setenv(
        "AIRFLOW__OPENLINEAGE__TRANSPORT",
        json.dumps({"type": "file", "log_file_path": str(events_file), "append": True}),
    )
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__NAMESPACE", "xai-tests")
    # Emit from a thread rather than a forked copy of the test process (which runs the emulator).
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD", "True")
    _clear_openlineage_settings()
    listener = get_openlineage_listener()
    listener.adapter._client = None  # built again from the transport above
    manager = _listener_manager()
    manager.add_listener(listener)

    def read() -> list[dict[str, Any]]:
        if not events_file.exists():
            return []
        return [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]

    try:
        yield read
    finally:
        manager.pm.unregister(listener)
        listener.adapter._client = None
        monkeypatch.undo()
        _clear_openlineage_settings()
