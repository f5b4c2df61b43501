"""A client for xAI's Batch API that needs nothing from Airflow.

>>> from airflow_provider_xai_batch.client import XAIBatchClient, BatchStatus
>>> client = XAIBatchClient("xai-key", base_url="http://127.0.0.1:8787")  # doctest: +SKIP
>>> batch = client.create_batch("nightly")  # doctest: +SKIP
>>> batch.status is BatchStatus.EMPTY  # doctest: +SKIP
True
"""

from __future__ import annotations

from airflow_provider_xai_batch.client.aio import AsyncXAIBatchClient
from airflow_provider_xai_batch.client.errors import (
    XAIAPIError,
    XAIAuthenticationError,
    XAIConflictError,
    XAIConnectionError,
    XAIError,
    XAIInputError,
    XAIInvalidRequestError,
    XAINotFoundError,
    XAIPermissionDeniedError,
    XAIRateLimitError,
    XAIServerError,
)
from airflow_provider_xai_batch.client.located import LocatedRequest
from airflow_provider_xai_batch.client.models import (
    Batch,
    BatchRequestMetadata,
    BatchResult,
    BatchState,
    BatchStatus,
    UploadedFile,
)
from airflow_provider_xai_batch.client.policy import ClientLimits, RetryPolicy
from airflow_provider_xai_batch.client.sync import XAIBatchClient

__all__ = [
    "AsyncXAIBatchClient",
    "Batch",
    "BatchRequestMetadata",
    "BatchResult",
    "BatchState",
    "BatchStatus",
    "ClientLimits",
    "LocatedRequest",
    "RetryPolicy",
    "UploadedFile",
    "XAIAPIError",
    "XAIAuthenticationError",
    "XAIBatchClient",
    "XAIConflictError",
    "XAIConnectionError",
    "XAIError",
    "XAIInputError",
    "XAIInvalidRequestError",
    "XAINotFoundError",
    "XAIPermissionDeniedError",
    "XAIRateLimitError",
    "XAIServerError",
]
