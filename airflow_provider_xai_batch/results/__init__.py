"""Export a batch's results to object storage, with or without an operator.

>>> from airflow_provider_xai_batch.client import XAIBatchClient
>>> from airflow_provider_xai_batch.results import export_results
>>> with XAIBatchClient("xai-key") as client:  # doctest: +SKIP
...     manifest = export_results(client, "batch_123", "file:///data/results/batch_123")
>>> sorted(manifest["files"])  # doctest: +SKIP
['failed', 'succeeded']

Modules: :mod:`.rows` turns pages into lines, :mod:`.staging` writes files that appear only when
complete, :mod:`.manifest` checks the counts and describes the export, :mod:`.export` runs it.
"""

from __future__ import annotations

from airflow_provider_xai_batch.results.export import BatchNotFinishedError, export_results
from airflow_provider_xai_batch.results.manifest import FAILED_FILE, MANIFEST_FILE, SUCCEEDED_FILE
from airflow_provider_xai_batch.results.staging import resolve_output_folder, uri_of

__all__ = [
    "FAILED_FILE",
    "MANIFEST_FILE",
    "SUCCEEDED_FILE",
    "BatchNotFinishedError",
    "export_results",
    "resolve_output_folder",
    "uri_of",
]
