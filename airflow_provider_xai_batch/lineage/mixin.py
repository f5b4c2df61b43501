"""The ``get_openlineage_facets_on_*`` methods the OpenLineage provider looks for on an operator.

The mixin reads the operator's public arguments only (``source``, ``source_conn_id``,
``output_path``, ``output_conn_id``, ``batch_id``, ``xai_conn_id``), so an operator gains lineage
by listing it among its bases. Lineage never fails a task: what cannot be found is left out.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from airflow_provider_xai_batch.hooks.xai import XAIBatchHook
from airflow_provider_xai_batch.lineage.facets import BatchFigures, OutputFile, operator_lineage
from airflow_provider_xai_batch.results import MANIFEST_FILE
from airflow_provider_xai_batch.results.manifest import data_file_names
from airflow_provider_xai_batch.results.staging import resolve_output_folder, uri_of
from airflow_provider_xai_batch.sources import expand_sources

log = logging.getLogger(__name__)

OUTPUT_KEYS = ("succeeded", "failed")


class XAIBatchLineageMixin:
    """OpenLineage inputs, outputs and run facets for an operator of this provider.

    - inputs: the files ``source`` names (globs expanded), when the operator reads files;
    - outputs: ``succeeded.jsonl``, ``failed.jsonl`` (or the ``.parquet`` pair) and
      ``manifest.json`` under ``output_path``, with row counts and sizes once the manifest is written;
    - run facets: ``xai_batch`` (batch id, status, counts, cost) and ``externalQuery`` (batch id).

    >>> from airflow.sdk import BaseOperator
    >>> class MyExportOperator(XAIBatchLineageMixin, BaseOperator):  # doctest: +SKIP
    ...     def __init__(self, *, batch_id, output_path, **kwargs): ...
    """

    def get_openlineage_facets_on_start(self) -> Any:
        """Inputs and outputs as declared, and the batch id when the operator is given one."""
        batch_id = self._lineage_batch_id()
        figures = BatchFigures(batch_id) if batch_id else None
        return operator_lineage(self._lineage_inputs(), self._lineage_outputs(None), figures)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """As on start, plus the counts and cost: from the manifest written, else from the batch."""
        manifest = self._lineage_manifest()
        figures = (
            BatchFigures.from_manifest(manifest) if manifest is not None else self._lineage_batch_figures()
        )
        return operator_lineage(self._lineage_inputs(), self._lineage_outputs(manifest), figures)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        """As on start: a failed run wrote no manifest worth reporting."""
        return self.get_openlineage_facets_on_start()

    # -- what the operator names -----------------------------------------------------------------
    def _lineage_batch_id(self) -> str | None:
        batch_id = getattr(self, "batch_id", None)
        # Before rendering (or with nothing rendered yet) it may still be a template or an XComArg.
        if isinstance(batch_id, str) and batch_id and "{{" not in batch_id:
            return batch_id
        return None

    def _lineage_inputs(self) -> list[str]:
        source = getattr(self, "source", None)
        if source is None:
            return []
        try:
            return [
                item.uri for item in expand_sources(source, conn_id=getattr(self, "source_conn_id", None))
            ]
        except Exception as exc:  # the task reports a bad source itself; lineage just omits it
            log.warning("OpenLineage: could not list the input files (%s)", exc)
            return []

    def _lineage_folder(self) -> Any:
        output_path = getattr(self, "output_path", None)
        if output_path is None:
            return None
        return resolve_output_folder(output_path, getattr(self, "output_conn_id", None))

    def _lineage_outputs(self, manifest: dict[str, Any] | None) -> list[OutputFile]:
        folder = self._lineage_folder()
        if folder is None:
            return []
        details = (manifest or {}).get("file_details") or {}
        outputs = [
            OutputFile(
                uri_of(folder / file_name),
                rows=(details.get(key) or {}).get("rows"),
                size=(details.get(key) or {}).get("bytes"),
            )
            for key, file_name in zip(
                OUTPUT_KEYS, data_file_names(getattr(self, "output_format", "jsonl")), strict=True
            )
        ]
        outputs.append(OutputFile(uri_of(folder / MANIFEST_FILE)))
        return outputs

    def _lineage_manifest(self) -> dict[str, Any] | None:
        folder = self._lineage_folder()
        if folder is None:
            return None
        try:
            manifest = json.loads((folder / MANIFEST_FILE).read_text())
        except Exception as exc:
            log.warning("OpenLineage: could not read the manifest (%s)", exc)
            return None
        # A manifest left by another batch in a reused folder says nothing about this run.
        batch_id = self._lineage_batch_id()
        if not isinstance(manifest, dict) or (batch_id is not None and manifest.get("batch_id") != batch_id):
            return None
        return manifest

    def _lineage_batch_figures(self) -> BatchFigures | None:
        batch_id = self._lineage_batch_id()
        if batch_id is None:
            return None
        hook = XAIBatchHook(xai_conn_id=getattr(self, "xai_conn_id", XAIBatchHook.default_conn_name))
        try:
            return BatchFigures.from_batch(hook.get_batch(batch_id))
        except Exception as exc:
            log.warning("OpenLineage: could not read batch %s (%s)", batch_id, exc)
            return BatchFigures(batch_id)
        finally:
            hook.close()
