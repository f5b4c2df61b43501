"""Export a batch's results to object storage, with or without an operator.

>>> from airflow_provider_xai_batch.client import XAIBatchClient
>>> from airflow_provider_xai_batch.results import export_results
>>> with XAIBatchClient("xai-key") as client:  # doctest: +SKIP
...     manifest = export_results(client, "batch_123", "file:///data/results/batch_123")
>>> sorted(manifest["files"])  # doctest: +SKIP
['failed', 'succeeded']
"""

from __future__ import annotations

from airflow_provider_xai_batch.results.writer import (
    FAILED_FILE,
    MANIFEST_FILE,
    SUCCEEDED_FILE,
    BatchNotFinishedError,
    export_results,
)

__all__ = ["FAILED_FILE", "MANIFEST_FILE", "SUCCEEDED_FILE", "BatchNotFinishedError", "export_results"]
