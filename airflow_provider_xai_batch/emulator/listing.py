"""Pages of the service's lists: batches and files newest first, a batch's requests and results.

Each page function works on what the service already holds and returns the rows with the token of
the next page (``None`` on the last page); tokens are bound to their list by ``scope``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_xai_batch.emulator.errors import invalid_argument
from airflow_provider_xai_batch.emulator.pagination import encode_token
from airflow_provider_xai_batch.emulator.request_rows import metadata_row, result_row
from airflow_provider_xai_batch.emulator.store import RequestStore


def newest_first(
    order: Sequence[str], after: str | None, size: int, scope: str
) -> tuple[list[str], str | None]:
    """Up to ``size`` ids of ``order`` (oldest first) before ``after``, newest first, and the next token.

    >>> newest_first(["a", "b", "c"], None, 2, "batches")[0]
    ['c', 'b']
    """
    end = len(order)
    if after is not None:
        try:
            end = order.index(after)
        except ValueError:
            raise invalid_argument("Invalid pagination_token") from None
    begin = max(0, end - size)
    page = list(reversed(order[begin:end]))
    return page, encode_token(page[-1], scope) if page and begin > 0 else None


def request_page(
    store: RequestStore, after: str | None, size: int, scope: str
) -> tuple[list[dict[str, Any]], str | None]:
    """Per-request metadata rows in submission order, after the request ``after``."""
    try:
        begin = store.after(after)
    except KeyError:
        raise invalid_argument("Invalid pagination_token") from None
    end = min(len(store), begin + size)
    rows = [metadata_row(store, position) for position in range(begin, end)]
    next_token = encode_token(store.id_at(end - 1), scope) if rows and end < len(store) else None
    return rows, next_token


def result_page(
    batch_id: str, store: RequestStore, after: str | None, size: int, scope: str, media_base_url: str = ""
) -> tuple[list[str], str | None]:
    """Result rows (JSON text) of finished requests sorted by id, after the id ``after``."""
    finished = store.finished_after(after)
    rows: list[str] = []
    last_id = ""
    for request_id, position in finished:
        rows.append(result_row(batch_id, store, request_id, position, media_base_url))
        last_id = request_id
        if len(rows) == size:
            break
    next_token = None
    if len(rows) == size and next(finished, None) is not None:
        next_token = encode_token(last_id, scope)
    return rows, next_token
