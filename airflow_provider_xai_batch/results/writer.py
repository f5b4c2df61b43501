"""Earlier home of the results export, kept so that existing imports keep working.

New code imports from :mod:`airflow_provider_xai_batch.results`.

>>> from airflow_provider_xai_batch.results.writer import export_results  # same as results.export_results
"""

from __future__ import annotations

from airflow_provider_xai_batch.logs import LogLike as LoggerLike
from airflow_provider_xai_batch.results.export import BatchNotFinishedError, export_results
from airflow_provider_xai_batch.results.manifest import (
    FAILED_FILE,
    MANIFEST_FILE,
    MANIFEST_VERSION,
    SUCCEEDED_FILE,
    build_manifest,
    reconcile,
)
from airflow_provider_xai_batch.results.rows import RowCounts, encode_page_body
from airflow_provider_xai_batch.results.staging import resolve_output_folder, uri_of

__all__ = [
    "FAILED_FILE",
    "MANIFEST_FILE",
    "MANIFEST_VERSION",
    "SUCCEEDED_FILE",
    "BatchNotFinishedError",
    "LoggerLike",
    "RowCounts",
    "build_manifest",
    "encode_page_body",
    "export_results",
    "reconcile",
    "resolve_output_folder",
    "uri_of",
]
