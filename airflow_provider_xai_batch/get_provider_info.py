"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_provider_xai_batch import __version__


def get_provider_info() -> dict[str, Any]:
    """What ``airflow providers list`` shows and how the ``xai`` connection type reaches the UI."""
    return {
        "package-name": "airflow-provider-xai-batch",
        "name": "xAI Batch",
        "description": "Run large language-model jobs through xAI's Batch API from Airflow DAGs.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "xAI Batch",
                "external-doc-url": "https://docs.x.ai/docs/guides/batch",
                "tags": ["ai"],
            }
        ],
        "hooks": [
            {"integration-name": "xAI Batch", "python-modules": ["airflow_provider_xai_batch.hooks.xai"]}
        ],
        "operators": [
            {
                "integration-name": "xAI Batch",
                "python-modules": [
                    "airflow_provider_xai_batch.operators.batch",
                    "airflow_provider_xai_batch.operators.files",
                    "airflow_provider_xai_batch.operators.results",
                ],
            }
        ],
        "sensors": [
            {"integration-name": "xAI Batch", "python-modules": ["airflow_provider_xai_batch.sensors.batch"]}
        ],
        "triggers": [
            {"integration-name": "xAI Batch", "python-modules": ["airflow_provider_xai_batch.triggers.batch"]}
        ],
        "connection-types": [
            {
                "connection-type": "xai",
                "hook-class-name": "airflow_provider_xai_batch.hooks.xai.XAIBatchHook",
                "hook-name": "xAI Batch",
            }
        ],
    }
