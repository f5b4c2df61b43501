"""Stream a batch's results to object storage: ``succeeded.jsonl``, ``failed.jsonl`` (or ``.parquet``), then ``manifest.json``.

Data files are published first and the manifest last, so a reader that waits for
``manifest.json`` always sees a finished, consistent export. Pages are written as they arrive, so
memory stays flat whatever the size of the batch.

>>> from airflow_provider_xai_batch.client import XAIBatchClient
>>> with XAIBatchClient("xai-key", base_url="http://127.0.0.1:8787") as client:  # doctest: +SKIP
...     manifest = export_results(client, "batch_123", "s3://bucket/evals/nightly", output_conn_id="aws")
>>> manifest["succeeded"], manifest["failed"], manifest["files"]["failed"]  # doctest: +SKIP
(49012, 988, 's3://bucket/evals/nightly/failed.jsonl')
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from airflow.sdk import ObjectStoragePath

from airflow_provider_xai_batch.client import Batch, XAIBatchClient, XAIError
from airflow_provider_xai_batch.client.prefetch import Prefetcher
from airflow_provider_xai_batch.logs import LogLike
from airflow_provider_xai_batch.results.manifest import build_manifest, reconcile
from airflow_provider_xai_batch.results.metadata import MetadataEntry, MetadataLookup
from airflow_provider_xai_batch.results.progress import DEFAULT_PROGRESS_INTERVAL, ExportProgress
from airflow_provider_xai_batch.results.result_files import ResultFiles
from airflow_provider_xai_batch.results.rows import RowCounts, encode_page_body
from airflow_provider_xai_batch.results.staging import OutputFolder, resolve_output_folder
from airflow_provider_xai_batch.results.table import require_output_format

_log = logging.getLogger(__name__)


class BatchNotFinishedError(XAIError):
    """The batch is still running (or empty), and a complete export was asked for.

    >>> from airflow_provider_xai_batch.client import Batch
    >>> batch = Batch(batch_id="batch_1", state={"num_requests": 10, "num_pending": 4})
    >>> BatchNotFinishedError(batch).status
    'processing'
    """

    def __init__(self, batch: Batch) -> None:
        self.batch_id = batch.batch_id
        self.status = batch.status.value
        state = batch.state
        super().__init__(
            f"batch {batch.batch_id} is {self.status} ({state.num_pending} of {state.num_requests} "
            "requests pending): wait until it finishes (XAIBatchSensor), or pass allow_partial=True "
            "to export the results that exist so far"
        )


def export_results(
    client: XAIBatchClient,
    batch_id: str,
    output_path: ObjectStoragePath | str,
    *,
    output_conn_id: str | None = None,
    allow_partial: bool = False,
    page_size: int = 1000,
    log: LogLike | None = None,
    progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
    output_format: str = "jsonl",
    metadata: Iterator[MetadataEntry] | None = None,
) -> dict[str, Any]:
    """Write every result of a batch under the folder ``output_path``; return the manifest.

    ``output_path`` is any ``ObjectStoragePath`` URI (``s3://bucket/prefix``, ``file:///data/out``)
    or a plain local path; ``output_conn_id`` is the Airflow connection to reach it. The folder gets
    ``succeeded.jsonl``, ``failed.jsonl`` (cancelled requests included) and, last,
    ``manifest.json``. A batch still running is refused with :class:`BatchNotFinishedError`
    unless ``allow_partial`` is set, in which case the results so far are written and the manifest
    says ``"partial": true``. Running again rewrites byte-identical data files.

    ``output_format="parquet"`` writes ``succeeded.parquet`` and ``failed.parquet`` instead of the
    JSONL pair (needs the ``[parquet]`` extra; see :mod:`.table` for the columns). ``metadata``, the
    input's sidecar entries sorted by request id (:func:`~.metadata.read_sidecar`), puts each input
    item's ``"metadata"`` back on its row, and the kind it was sent as on a failed row.

    A long export logs its progress to ``log`` (rows written, share of the batch, rows per second)
    at most once per ``progress_interval`` seconds, and ends with a summary line.

    >>> manifest = export_results(client, "batch_123", "/data/results/batch_123")  # doctest: +SKIP
    >>> manifest["total"] == manifest["succeeded"] + manifest["failed"]  # doctest: +SKIP
    True
    """
    logger: LogLike = log if log is not None else _log
    require_output_format(output_format)
    folder = OutputFolder(resolve_output_folder(output_path, output_conn_id))
    before = client.get_batch(batch_id)
    progress = ExportProgress(
        logger, batch_id, expected=before.state.num_requests, interval=progress_interval
    )
    status = before.status
    if not status.is_terminal and not allow_partial:
        raise BatchNotFinishedError(before)
    partial = not status.is_terminal
    if partial:
        logger.warning("batch %s is %s: exporting the results that exist so far", batch_id, status.value)

    lookup = MetadataLookup(metadata) if metadata is not None else None
    with ResultFiles(folder, logger, output_format=output_format) as files:
        counts = RowCounts()
        # The next page downloads while this one is encoded and written; memory stays a few pages.
        with Prefetcher(client.iter_result_page_bodies(batch_id, page_size=page_size)) as pages:
            for body in pages:
                files.write(*encode_page_body(body, counts, lookup))
                progress.update(counts.total)
        files.close_data()

        after = client.get_batch(batch_id)
        reconciled, expected, notes = reconcile(counts, before, after, partial=partial)
        manifest = build_manifest(
            after,
            counts,
            files.data_files,
            partial=partial,
            reconciled=reconciled,
            expected=expected,
            notes=notes,
        )
        files.publish(manifest)

    if not reconciled:
        logger.warning(
            "batch %s: the results written do not match the batch's counters: %s",
            batch_id,
            "; ".join(notes),
        )
    logger.info("%s", progress.summary(counts.succeeded, counts.failed, counts.cancelled, folder.uri()))
    return manifest
