"""The export's file names, and ``manifest.json``: rows written checked against the batch's counters.

>>> from airflow_provider_xai_batch.client import Batch
>>> batch = Batch(batch_id="batch_1", state={"num_requests": 2, "num_success": 1, "num_error": 1})
>>> reconciled, expected, notes = reconcile(RowCounts(succeeded=1, failed=1), batch, batch, partial=False)
>>> reconciled, expected["total"], notes
(True, 2, [])
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypedDict

from airflow_provider_xai_batch.client import Batch
from airflow_provider_xai_batch.results.rows import RowCounts

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from airflow_provider_xai_batch.results.staging import StagedFile

SUCCEEDED_FILE = "succeeded.jsonl"
FAILED_FILE = "failed.jsonl"
SUCCEEDED_PARQUET = "succeeded.parquet"
FAILED_PARQUET = "failed.parquet"
OUTPUT_FORMATS = ("jsonl", "parquet")
MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1


def data_file_names(output_format: str) -> tuple[str, str]:
    """The succeeded and failed file names of an export in ``output_format``.

    >>> data_file_names("parquet")
    ('succeeded.parquet', 'failed.parquet')
    """
    if output_format == "jsonl":
        return SUCCEEDED_FILE, FAILED_FILE
    if output_format == "parquet":
        return SUCCEEDED_PARQUET, FAILED_PARQUET
    raise ValueError(f"output_format must be one of {', '.join(OUTPUT_FORMATS)}, not {output_format!r}")


def _counters(batch: Batch) -> dict[str, int]:
    state = batch.state
    failed = state.num_error + state.num_cancelled
    return {
        "total": state.num_success + failed,
        "succeeded": state.num_success,
        "failed": failed,
        "cancelled": state.num_cancelled,
        "pending": state.num_pending,
    }


def reconcile(
    counts: RowCounts, before: Batch, after: Batch, *, partial: bool
) -> tuple[bool, dict[str, int], list[str]]:
    """Compare rows written with the batch's counters: ``(reconciled, expected, notes)``.

    Complete exports must match the counters read after the last page. A partial export raced the
    processing, so it only has to lie between the counters read before and after it.
    """
    written = {"total": counts.total, "succeeded": counts.succeeded, "failed": counts.failed}
    written["cancelled"] = counts.cancelled
    first, last = _counters(before), _counters(after)
    notes: list[str] = []
    keys = ("succeeded", "failed", "cancelled")
    if partial:
        reconciled = all(min(first[k], last[k]) <= written[k] <= max(first[k], last[k]) for k in keys)
    else:
        reconciled = all(written[k] == last[k] for k in keys)
    if not reconciled:
        for key in keys:
            if written[key] != last[key]:
                gap = last[key] - written[key]
                what = "missing" if gap > 0 else "more than counted"
                notes.append(
                    f"{key}: the batch counts {last[key]}, {written[key]} written ({abs(gap)} {what})"
                )
        if first != last:
            notes.append(
                "the batch's counters changed while exporting (work in flight at cancel time can still "
                "land); export again once they settle"
            )
    if counts.duplicates:
        notes.append(f"{counts.duplicates} result rows were served twice and written once")
    if counts.unrecognised:
        notes.append(
            f"{counts.unrecognised} result rows had an unrecognised shape (written to the failed file)"
        )
    if counts.out_of_order:
        notes.append(f"{counts.out_of_order} result rows came out of batch_request_id order")
    if partial:
        notes.append(
            f"partial export: the batch was {before.status.value} with {first['pending']} requests pending; "
            "export again once it finishes"
        )
    elif last["pending"]:
        notes.append(f"{last['pending']} requests never finished (batch {after.status.value})")
    if after.cancel_by_xai_message:
        notes.append(f"xAI stopped the batch: {after.cancel_by_xai_message}")
    return reconciled, last, notes


class ExportFacts(TypedDict):
    """What an export found besides its rows: the keywords :func:`describe_export` requires."""

    partial: bool
    reconciled: bool
    expected: dict[str, int]
    notes: list[str]


def build_manifest(
    batch: Batch, counts: RowCounts, files: Mapping[str, StagedFile], **facts: Unpack[ExportFacts]
) -> dict[str, Any]:
    """The manifest of an export of ``batch``: :func:`describe_export` with the batch's identity."""
    return describe_export(batch.batch_id, batch.name, batch.status.value, counts, files, **facts)


def describe_export(
    batch_id: str | None,
    name: str | None,
    status: str | None,
    counts: RowCounts,
    files: Mapping[str, StagedFile],
    *,
    partial: bool,
    reconciled: bool,
    expected: dict[str, int],
    notes: list[str],
) -> dict[str, Any]:
    """The manifest of any export, also one without a batch (``batch_id`` ``None``: empty input).

    >>> describe_export(None, "nightly", None, RowCounts(), {}, partial=False, reconciled=True,
    ...                 expected={"total": 0}, notes=[])["total"]
    0
    """
    return {
        "batch_id": batch_id,
        "total": counts.total,
        "succeeded": counts.succeeded,
        "failed": counts.failed,
        "cancelled": counts.cancelled,
        "cost_usd_ticks": counts.cost_ticks,
        "files": {key: staged.uri for key, staged in files.items()},
        "name": name,
        "status": status,
        "partial": partial,
        "reconciled": reconciled,
        "expected": expected,
        "notes": notes,
        "file_details": {
            key: {"rows": getattr(counts, key), "bytes": staged.size} for key, staged in files.items()
        },
        "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "format_version": MANIFEST_VERSION,
    }
