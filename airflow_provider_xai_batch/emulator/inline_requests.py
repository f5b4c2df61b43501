"""Checking the requests of one ``add_requests`` call and picking those the batch does not hold yet."""

from __future__ import annotations

from typing import Any

from airflow_provider_xai_batch.emulator.config import EmulatorConfig
from airflow_provider_xai_batch.emulator.errors import ServiceError, failed_precondition, invalid_argument
from airflow_provider_xai_batch.emulator.payloads import (
    InvalidRequest,
    PreparedRequest,
    given_or_new_request_id,
    prepare_request,
)
from airflow_provider_xai_batch.emulator.store import RequestStore


def prepare_call(
    batch_requests: Any, config: EmulatorConfig
) -> tuple[list[PreparedRequest], ServiceError | None]:
    """The requests of one call, up to the first invalid one, and that one's error if any.

    The error is returned rather than raised because the service answers its own checks (batch
    exists, not cancelled, ...) first, and this one runs before the lock is taken.

    >>> prepared, error = prepare_call("not a list", EmulatorConfig())
    >>> (prepared, error.status if error is not None else None)
    ([], 400)
    """
    if not isinstance(batch_requests, list):
        return [], invalid_argument("batch_requests must be a list")
    supported = frozenset(config.supported_models)
    prepared: list[PreparedRequest] = []
    for index, item in enumerate(batch_requests):
        try:
            prepared.append(_prepare_item(index, item, supported, config.max_request_bytes))
        except ServiceError as error:
            return prepared, error
    return prepared, None


def new_requests(store: RequestStore, prepared: list[PreparedRequest]) -> list[PreparedRequest]:
    """The requests ``store`` does not hold yet; an id already held or repeated with other content: 412.

    Re-adding an id with identical content is accepted and adds nothing.
    """
    admitted: list[PreparedRequest] = []
    in_call: dict[str, bytes] = {}
    for request in prepared:
        request_id = request.batch_request_id
        position = store.position(request_id)
        earlier = store.digest_at(position) if position is not None else in_call.get(request_id)
        if earlier is None:
            in_call[request_id] = request.digest
            admitted.append(request)
        elif earlier != request.digest:
            raise failed_precondition(
                f"batch_request_id '{request_id}' content differs from originally submitted"
            )
    return admitted


def _prepare_item(index: int, item: Any, supported: frozenset[str], max_bytes: int) -> PreparedRequest:
    if not isinstance(item, dict):
        raise invalid_argument(f"batch_requests[{index}] must be a JSON object")
    request_id = given_or_new_request_id(item.get("batch_request_id"))
    if request_id is None:
        raise invalid_argument(f"batch_requests[{index}].batch_request_id must be a string")
    if "batch_request" not in item:
        raise invalid_argument(f"batch_requests[{index}].batch_request is required")
    try:
        return prepare_request(
            request_id, item["batch_request"], supported_models=supported, max_request_bytes=max_bytes
        )
    except InvalidRequest as error:
        raise ServiceError.of(error.status, error.message) from None
