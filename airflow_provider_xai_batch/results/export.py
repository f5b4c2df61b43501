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
from typing import TYPE_CHECKING, Any

from airflow.sdk import ObjectStoragePath

from airflow_provider_xai_batch.client import Batch, XAIBatchClient, XAIError
from airflow_provider_xai_batch.client.prefetch import Prefetcher
from airflow_provider_xai_batch.results.manifest import build_manifest, reconcile
from airflow_provider_xai_batch.results.options import ExportOptions, ExportSetup
from airflow_provider_xai_batch.results.progress import ExportProgress
from airflow_provider_xai_batch.results.rows import RowCounts, decode_page
from airflow_provider_xai_batch.waiting.progress import DEFAULT_PROGRESS_INTERVAL

if TYPE_CHECKING:
    from typing_extensions import Unpack

_log = logging.getLogger(__name__)
# Pages fetched ahead of the one being written (about 0.5 MB each at 1,000 rows). With one, the
# fetch thread stopped whenever writing a page took longer than fetching the next, and the
# service waited for its next request; a few pages absorb those moments. Memory stays flat.
PREFETCH_PAGES = 4


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
    allow_partial: bool = False,
    page_size: int = 1000,
    progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
    **options: Unpack[ExportOptions],
) -> dict[str, Any]:
    """Write every result of a batch under the folder ``output_path``; return the manifest.

    ``output_path`` is any ``ObjectStoragePath`` URI (``s3://bucket/prefix``, ``file:///data/out``)
    or a plain local path; ``output_conn_id`` is the Airflow connection to reach it. The folder gets
    ``succeeded.jsonl``, ``failed.jsonl`` (cancelled requests included) and, last,
    ``manifest.json``. A batch still running is refused with :class:`BatchNotFinishedError`
    unless ``allow_partial`` is set, in which case the results so far are written and the manifest
    says ``"partial": true``. Running again rewrites byte-identical data files. Results are read
    ``page_size`` at a time.

    The other keywords are those of :class:`~.options.ExportOptions`, shared with
    :func:`~.rounds.export_rounds`. ``output_format="parquet"`` writes ``succeeded.parquet`` and
    ``failed.parquet`` instead of the JSONL pair (needs the ``[parquet]`` extra; see :mod:`.table`
    for the columns). ``metadata``, the input's sidecar entries sorted by request id
    (:func:`~.metadata.read_sidecar`), puts each input item's ``"metadata"`` back on its row, and
    the kind it was sent as on a failed row.

    Images and videos (``media="download"``, the default) are stored under ``media/`` as
    ``<batch_request_id>-<n>.<ext>`` and each such row gains ``"media": [{"uri", "content_type",
    "bytes", "sha256"}]``; only ``https`` URLs on xAI's media hosts (plus ``allow_media_hosts``)
    are fetched, or the connection's own origin when it is a plain-http or loopback service.
    ``media="urls"`` keeps the rows as xAI sent them. Media that cannot be stored (e.g. URLs
    expired an hour after generation) are named in the manifest's ``media.failures`` and fail the
    export with :class:`~.media.MediaExportError` once everything else is written, unless
    ``allow_media_failures`` (by default: ``allow_partial``) is set. A re-run re-uses files still
    stored with the same size and digest.

    A long export logs its progress to ``log`` (rows written, share of the batch, rows per second)
    at most once per ``progress_interval`` seconds, and ends with a summary line.

    >>> manifest = export_results(client, "batch_123", "/data/results/batch_123")  # doctest: +SKIP
    >>> manifest["total"] == manifest["succeeded"] + manifest["failed"]  # doctest: +SKIP
    True
    """
    setup = ExportSetup(
        client, output_path, options, caller="export_results", default_log=_log, allow_partial=allow_partial
    )
    logger, folder = setup.log, setup.folder
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

    with setup.files() as (files, step):
        counts = RowCounts()
        reader = files.payload_reader
        # The next pages download while this one is encoded and written; memory stays a few pages.
        bodies = client.iter_result_page_bodies(batch_id, page_size=page_size)
        with Prefetcher(bodies, depth=PREFETCH_PAGES) as pages:
            for body in pages:
                page = decode_page(body, counts, setup.lookup, reader)
                if setup.download and step.wanted(page.kinds):
                    files.write(step.process(page.succeeded_lines()), page.failed_lines())
                else:
                    files.write_page(page)
                progress.update(counts.total)
        # The previous export's rows (read for re-use) are released before the new ones replace them.
        step.close()
        files.close_data()

        after = client.get_batch(batch_id)
        reconciled, expected, notes = reconcile(counts, before, after, partial=partial)
        tally = step.tally
        if tally.failed:
            notes.append(tally.error_message())
        manifest = build_manifest(
            after,
            counts,
            files.data_files,
            partial=partial,
            reconciled=reconciled,
            expected=expected,
            notes=notes,
        )
        manifest["media"] = tally.section(setup.media)
        files.publish(manifest)

    if not reconciled:
        logger.warning(
            "batch %s: the results written do not match the batch's counters: %s",
            batch_id,
            "; ".join(notes),
        )
    logger.info("%s", progress.summary(counts.succeeded, counts.failed, counts.cancelled, folder.uri()))
    setup.finish_media(tally)
    return manifest
