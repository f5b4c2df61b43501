"""Apache Airflow provider for xAI's Batch API.

Hook, operators, a deferrable sensor and trigger, a results exporter and a local emulator of the
service. The client in :mod:`airflow_provider_xai_batch.client` needs nothing from Airflow.
"""

from __future__ import annotations

__version__ = "0.1.0"
