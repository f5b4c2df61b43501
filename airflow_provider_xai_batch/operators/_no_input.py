"""What ``XAIBatchOperator`` leaves when its input holds no requests: no batch, empty results.

An upstream task that found nothing to do is a normal day: the task succeeds at once instead of
creating an empty batch (which would never finish), and ``output_path`` still gets the usual three
files, so downstream readers need no special case.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from airflow_provider_xai_batch.results.writer import (
    FAILED_FILE,
    MANIFEST_FILE,
    MANIFEST_VERSION,
    SUCCEEDED_FILE,
    resolve_output_folder,
    uri_of,
)

NO_INPUT_NOTE = "the input held no requests: no batch was created"


def empty_manifest(name: str, files: dict[str, str], written_at: str) -> dict[str, Any]:
    """The manifest of an export with nothing in it (``batch_id`` is ``None``: no batch exists).

    >>> empty_manifest("nightly", {}, "2026-01-01T00:00:00+00:00")["total"]
    0
    """
    return {
        "batch_id": None,
        "total": 0,
        "succeeded": 0,
        "failed": 0,
        "cancelled": 0,
        "cost_usd_ticks": 0,
        "files": files,
        "name": name,
        "status": None,
        "partial": False,
        "reconciled": True,
        "expected": {"total": 0, "succeeded": 0, "failed": 0, "cancelled": 0},
        "notes": [NO_INPUT_NOTE],
        "file_details": {"succeeded": {"rows": 0, "bytes": 0}, "failed": {"rows": 0, "bytes": 0}},
        "written_at": written_at,
        "format_version": MANIFEST_VERSION,
    }


def write_empty_results(output_path: Any, output_conn_id: str | None, name: str) -> dict[str, Any]:
    """Write empty ``succeeded.jsonl`` and ``failed.jsonl``, then a manifest with ``total`` 0; return it."""
    folder = resolve_output_folder(output_path, output_conn_id)
    folder.mkdir(parents=True, exist_ok=True)
    manifest_path = folder / MANIFEST_FILE
    # The old manifest goes first, so no manifest ever vouches for data files it did not describe.
    if manifest_path.exists():
        manifest_path.unlink()
    files = {}
    for key, file_name in (("succeeded", SUCCEEDED_FILE), ("failed", FAILED_FILE)):
        path = folder / file_name
        path.write_bytes(b"")
        files[key] = uri_of(path)
    written_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    manifest = empty_manifest(name, files, written_at)
    manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest
