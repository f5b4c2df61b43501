"""The rows of a batch's request listing and of its results, built from its ``RequestStore``."""

from __future__ import annotations

from typing import Any

from airflow_provider_xai_batch.emulator.clock import utc_date
from airflow_provider_xai_batch.emulator.outcomes import CANCELLED_ERROR, PROCESSING_ERROR
from airflow_provider_xai_batch.emulator.payloads import ENDPOINTS, quote_json, render_response_json
from airflow_provider_xai_batch.emulator.store import CANCELLED, SUCCEEDED, RequestStore


def metadata_row(store: RequestStore, position: int) -> dict[str, Any]:
    """One row of ``list_batch_requests``: the request's endpoint, model, state and times."""
    finished = store.finish_time(position)
    return {
        "batch_request_id": store.id_at(position),
        "endpoint": ENDPOINTS[store.kind_at(position)],
        "model": store.model_at(position),
        "state": store.state_at(position),
        "create_time": utc_date(store.added_at(position)),
        "finish_time": utc_date(finished) if finished is not None else None,
    }


def result_row(
    batch_id: str, store: RequestStore, request_id: str, position: int, media_base_url: str = ""
) -> str:
    """One result row as JSON text: the rendered response, or the error the request ended with."""
    state = store.state_at(position)
    if state == SUCCEEDED:
        finished = store.finish_time(position)
        response = render_response_json(
            kind=store.kind_at(position),
            model=store.model_at(position),
            batch_id=batch_id,
            batch_request_id=request_id,
            snippet=store.snippet_at(position),
            prompt_tokens=store.prompt_tokens_at(position),
            image_count=store.image_count_at(position),
            b64_images=store.b64_images_at(position),
            finished_at=finished if finished is not None else 0.0,
            media_base_url=media_base_url,
        )
        return f'{{"batch_request_id":{quote_json(request_id)},"batch_result":{{"response":{response}}}}}'
    cancelled = state == CANCELLED
    error = CANCELLED_ERROR if cancelled else (store.fixed_error_at(position) or PROCESSING_ERROR)
    return f'{{"batch_request_id":{quote_json(request_id)},"batch_result":{{"error":{quote_json(error)}}}}}'
