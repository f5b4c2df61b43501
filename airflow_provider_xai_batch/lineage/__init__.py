"""OpenLineage for the operators: input files, result files and the batch's figures.

With ``apache-airflow-providers-openlineage`` installed and a transport configured, the add step
and ``XAIBatchOperator`` name their input files as input datasets; the results step and
``XAIBatchOperator`` with an ``output_path`` name ``succeeded.jsonl``, ``failed.jsonl`` and
``manifest.json`` as outputs (with their row counts and sizes); every run carries the batch id,
the counts and the cost in an ``xai_batch`` run facet, and the batch id as the standard
``externalQuery`` facet. Nothing here imports OpenLineage until Airflow asks for lineage, so the
provider works the same without it.

>>> from airflow_provider_xai_batch.lineage.naming import dataset_name
>>> dataset_name("s3://prompts/2026-01-01/part-1.jsonl")
('s3://prompts', '2026-01-01/part-1.jsonl')
"""

from __future__ import annotations

from airflow_provider_xai_batch.lineage.mixin import XAIBatchLineageMixin

__all__ = ["XAIBatchLineageMixin"]
