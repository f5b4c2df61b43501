"""Export the results of a batch and its follow-up rounds as one: each request once, final outcome, attempts.

The files and their publication are those of :func:`~airflow_provider_xai_batch.results.export_results`
(staged, then moved into place, manifest last); each line gains ``"attempts"``, the number of
batches the request was sent in, and the manifest gains the rounds::

    {"batch_request_id": "q7", "kind": "chat_get_completion", "response": {...}, "attempts": 2}
    {"batch_request_id": "q9", "error": "Maximum number of tokens ...", "attempts": 1}

>>> manifest = export_rounds(client, ["batch_a", "batch_b"], "s3://bucket/out")  # doctest: +SKIP
>>> manifest["rounds"][1]["requests"], manifest["recovered"]  # doctest: +SKIP
(12, 11)
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from airflow.sdk import ObjectStoragePath

from airflow_provider_xai_batch.client import Batch, BatchResult, XAIBatchClient
from airflow_provider_xai_batch.client.inputs import RESULT_KEYS
from airflow_provider_xai_batch.resubmit.merge import FinalOutcome, RoundRow, merge_rounds
from airflow_provider_xai_batch.results.export import BatchNotFinishedError
from airflow_provider_xai_batch.results.manifest import build_manifest
from airflow_provider_xai_batch.results.metadata import MetadataEntry, metadata_value
from airflow_provider_xai_batch.results.options import ExportOptions, ExportSetup
from airflow_provider_xai_batch.results.rows import RowCounts

if TYPE_CHECKING:
    from typing_extensions import Unpack

_log = logging.getLogger(__name__)
_encode_lines = msgspec.json.Encoder().encode_lines
_LINES_PER_WRITE = 1000


def _round_rows(
    client: XAIBatchClient, batch_id: str, round_number: int, seen: Counter[int]
) -> Iterator[RoundRow]:
    for page in client.iter_raw_result_pages(batch_id):
        for row in page:
            request_id = row.get("batch_request_id") if isinstance(row, dict) else None
            if isinstance(request_id, str):
                seen[round_number] += 1
                yield RoundRow(request_id, round_number, row)


def _line(
    outcome: FinalOutcome, counts: RowCounts, entry: MetadataEntry | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The succeeded or failed line of one final outcome; ``counts`` adds it up."""
    result = BatchResult.model_validate(outcome.row)
    if result.succeeded:
        counts.succeeded += 1
        counts.cost_ticks += result.cost_in_usd_ticks
        line: dict[str, Any] = {
            "batch_request_id": outcome.request_id,
            "kind": result.response_kind,
            "response": result.response,
        }
        if entry is not None and entry.metadata is not None:
            line["metadata"] = metadata_value(entry.metadata)
        line["attempts"] = outcome.attempts
        return line, None
    counts.failed += 1
    counts.cancelled += result.is_cancelled
    failure: dict[str, Any] = {"batch_request_id": outcome.request_id, "error": result.error or ""}
    if entry is not None:
        failure["kind"] = RESULT_KEYS.get(entry.kind or "", entry.kind)
        if entry.metadata is not None:
            failure["metadata"] = metadata_value(entry.metadata)
    failure["attempts"] = outcome.attempts
    return None, failure


def _settled_total(batch: Batch) -> int:
    state = batch.state
    return state.num_success + state.num_error + state.num_cancelled


def export_rounds(
    client: XAIBatchClient,
    batch_ids: Sequence[str],
    output_path: ObjectStoragePath | str,
    **options: Unpack[ExportOptions],
) -> dict[str, Any]:
    """Write the final outcome of every request of ``batch_ids`` (round 0 first) under ``output_path``.

    Every round must be finished. Returns the manifest: the usual keys (``batch_id`` is round 0's),
    plus ``rounds`` (each batch with its size and counts), ``attempts`` (how many requests took
    1, 2 ... attempts), ``resubmitted`` and ``recovered`` (resent, and finally succeeded).
    The keywords are those of :class:`~.options.ExportOptions`, as for
    :func:`~.export.export_results`: ``output_format``, ``metadata`` and the media keywords work
    as they do there.
    """
    if not batch_ids:
        raise ValueError("export_rounds needs at least one batch")
    setup = ExportSetup(client, output_path, options, caller="export_rounds", default_log=_log)
    logger = setup.log
    batches = [client.get_batch(batch_id) for batch_id in batch_ids]
    for batch in batches:
        if not batch.status.is_terminal:
            raise BatchNotFinishedError(batch)
    counts = RowCounts()
    attempts: Counter[int] = Counter()
    seen: Counter[int] = Counter()
    recovered = 0
    with setup.files() as (files, step):

        def write_lines(good: bytes, bad: bytes) -> None:
            files.write(step.process(good) if setup.download else good, bad)

        streams = [_round_rows(client, batch_id, number, seen) for number, batch_id in enumerate(batch_ids)]
        good: list[dict[str, Any]] = []
        bad: list[dict[str, Any]] = []
        for outcome in merge_rounds(streams):
            entry = setup.lookup.get(outcome.request_id) if setup.lookup is not None else None
            ok, failure = _line(outcome, counts, entry)
            attempts[outcome.attempts] += 1
            if ok is not None:
                good.append(ok)
                recovered += outcome.attempts > 1
            else:
                bad.append(failure or {})
            if len(good) + len(bad) >= _LINES_PER_WRITE:
                write_lines(_encode_lines(good), _encode_lines(bad))
                good, bad = [], []
        write_lines(_encode_lines(good), _encode_lines(bad))
        step.close()
        files.close_data()

        rounds = [
            {
                "round": number,
                "batch_id": batch.batch_id,
                "name": batch.name,
                "requests": batch.state.num_requests,
                "succeeded": batch.state.num_success,
                "failed": batch.state.num_error + batch.state.num_cancelled,
                "results_read": seen[number],
            }
            for number, batch in enumerate(batches)
        ]
        notes = [
            f"round {item['round']} (batch {item['batch_id']}): the batch counts {_settled_total(batch)} "
            f"results, {item['results_read']} read"
            for item, batch in zip(rounds, batches, strict=True)
            if item["results_read"] != _settled_total(batch)
        ]
        if step.tally.failed:
            notes.append(step.tally.error_message())
        expected = {"total": _settled_total(batches[0])}
        reconciled = not notes and counts.total == expected["total"]
        manifest = build_manifest(
            batches[0],
            counts,
            files.data_files,
            partial=False,
            reconciled=reconciled,
            expected=expected,
            notes=notes,
        )
        manifest["rounds"] = rounds
        manifest["attempts"] = {str(number): attempts[number] for number in sorted(attempts)}
        manifest["resubmitted"] = sum(count for number, count in attempts.items() if number > 1)
        manifest["recovered"] = recovered
        manifest["media"] = step.tally.section(setup.media)
        files.publish(manifest)
    logger.info(
        "%d succeeded, %d failed (%d resent, %d of them recovered) over %d round(s), written to %s",
        counts.succeeded,
        counts.failed,
        manifest["resubmitted"],
        recovered,
        len(batch_ids),
        setup.folder.uri(),
    )
    setup.finish_media(step.tally)
    return manifest
