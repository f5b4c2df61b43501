from __future__ import annotations

import pickle

import pytest

from airflow_provider_xai_batch.client import errors


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (
            400,
            b'{"code": "Client specified an invalid argument", "error": "Incorrect API key provided: xa***"}',
            errors.XAIAuthenticationError,
        ),
        (401, b"", errors.XAIAuthenticationError),
        (
            400,
            b'{"code": "Client specified an invalid argument", "error": "Model x is not supported for batch processing."}',
            errors.XAIInvalidRequestError,
        ),
        (403, b'{"code": "c", "error": "batch cancelled"}', errors.XAIPermissionDeniedError),
        (
            404,
            b'{"code": "Some requested entity was not found", "error": "no batch"}',
            errors.XAINotFoundError,
        ),
        (412, b'{"code": "c", "error": "content differs"}', errors.XAIConflictError),
        (413, b"too large", errors.XAIInvalidRequestError),
        (
            429,
            b'{"code": "Some resource has been exhausted", "error": "Rate limit exceeded"}',
            errors.XAIRateLimitError,
        ),
        (503, b"<html>oops</html>", errors.XAIServerError),
    ],
)
def test_status_maps_to_one_class(status: int, body: bytes, cls: type[errors.XAIAPIError]) -> None:
    error = errors.error_from_response(status, body)
    assert type(error) is cls
    assert error.status_code == status
    assert isinstance(error, errors.XAIError)


def test_code_and_message_come_from_the_body() -> None:
    error = errors.error_from_response(412, b'{"code": "failed precondition", "error": "content differs"}')
    assert (error.code, error.message) == ("failed precondition", "content differs")
    assert "content differs" in str(error)


def test_the_key_is_scrubbed_from_anything_echoed() -> None:
    error = errors.error_from_response(
        400, b'{"error": "Incorrect API key provided: xai-secret-1"}', secret="xai-secret-1"
    )
    assert "xai-secret-1" not in str(error) and "xai-secret-1" not in repr(error)


def test_retry_after_is_read_only_when_present() -> None:
    assert errors.error_from_response(429, b"{}").retry_after is None  # type: ignore[attr-defined]
    assert errors.error_from_response(429, b"{}", retry_after="3").retry_after == 3.0  # type: ignore[attr-defined]


def test_errors_survive_pickling_for_airflow() -> None:
    error = errors.error_from_response(429, b'{"error": "slow down"}', retry_after="2")
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is errors.XAIRateLimitError and clone.message == "slow down"


def test_input_error_names_source_and_position() -> None:
    error = errors.XAIInputError("invalid JSON", source="s3://b/in.jsonl", position="line 7")
    assert str(error) == "s3://b/in.jsonl, line 7: invalid JSON"
    assert isinstance(error, ValueError)
