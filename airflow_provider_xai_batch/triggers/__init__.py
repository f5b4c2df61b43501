"""Triggers that wait for xAI batches in Airflow's triggerer."""

from __future__ import annotations

from airflow_provider_xai_batch.triggers.batch import XAIBatchTrigger

__all__ = ["XAIBatchTrigger"]
