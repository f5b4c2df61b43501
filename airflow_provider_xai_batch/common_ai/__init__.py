"""An ``xai`` batch adapter for ``apache-airflow-providers-common-ai`` (the ``[common-ai]`` extra).

common-ai's ``LLMBatchOperator`` / ``@task.llm_batch`` picks a batch adapter by the prefix of its
``model_id``; this package registers one for ``xai`` through the entry-point group
``airflow.providers.common.ai.batch_adapters``, so an existing common-ai DAG runs on xAI's Batch
API by changing only the model id and the connection:

>>> from airflow.providers.common.ai.operators.llm_batch import LLMBatchOperator  # doctest: +SKIP
>>> summarise = LLMBatchOperator(  # doctest: +SKIP
...     task_id="summarise",
...     requests=["Summarise: ...", "Summarise: ..."],
...     model_id="xai:grok-4.3",
...     llm_conn_id="xai_default",
...     result_path="s3://bucket/summaries/{{ dag.dag_id }}/{{ run_id }}/",
...     deferrable=True,
... )

The adapter itself lives in :mod:`.adapter`, which needs common-ai; :mod:`.translate` holds the
pure parts (batch names, request bodies, result fields) and needs nothing but this package, so
importing ``airflow_provider_xai_batch`` never requires common-ai.
"""

from __future__ import annotations

ADAPTER_ENTRY_POINT_GROUP = "airflow.providers.common.ai.batch_adapters"
"""Where common-ai looks for third-party batch adapters; the entry name is the model id prefix."""

__all__ = ["ADAPTER_ENTRY_POINT_GROUP"]
