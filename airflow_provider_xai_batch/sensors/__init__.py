"""Sensors that wait for xAI batches."""

from __future__ import annotations

from airflow_provider_xai_batch.sensors.batch import XAIBatchSensor

__all__ = ["XAIBatchSensor"]
