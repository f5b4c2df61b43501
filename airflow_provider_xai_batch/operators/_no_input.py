"""What ``XAIBatchOperator`` leaves when its input holds no requests: no batch, empty results.

An upstream task that found nothing to do is a normal day: the task succeeds at once instead of
creating an empty batch (which would never finish), and ``output_path`` still gets the usual three
files, staged and published like any export's, so downstream readers need no special case.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_xai_batch.logs import LogLike
from airflow_provider_xai_batch.results.manifest import describe_export
from airflow_provider_xai_batch.results.result_files import ResultFiles
from airflow_provider_xai_batch.results.rows import RowCounts
from airflow_provider_xai_batch.results.staging import OutputFolder, resolve_output_folder

NO_INPUT_NOTE = "the input held no requests: no batch was created"


def write_empty_results(
    output_path: Any,
    output_conn_id: str | None,
    name: str,
    *,
    log: LogLike,
    output_format: str = "jsonl",
) -> dict[str, Any]:
    """Write empty data files, then a manifest with ``total`` 0 (``batch_id`` ``None``); return it.

    >>> manifest = write_empty_results("/tmp/out", None, "nightly", log=log)  # doctest: +SKIP
    >>> manifest["total"], manifest["batch_id"]  # doctest: +SKIP
    (0, None)
    """
    folder = OutputFolder(resolve_output_folder(output_path, output_conn_id))
    with ResultFiles(folder, log, output_format=output_format) as files:
        files.close_data()
        manifest = describe_export(
            None,
            name,
            None,
            RowCounts(),
            files.data_files,
            partial=False,
            reconciled=True,
            expected={"total": 0, "succeeded": 0, "failed": 0, "cancelled": 0},
            notes=[NO_INPUT_NOTE],
        )
        files.publish(manifest)
    return manifest
