"""Finding again, on a retry, what an earlier try of the same task instance made: the one helper.

Making a batch or uploading a file is not safe to repeat, and XCom is cleared between tries, so
it cannot carry an id to a retry. Both go the same way, in this order:

1. Airflow >= 3.3: the task state store (``context["task_state_store"]``) keeps the id under a
   key, scoped to the task instance, across tries.
2. Every Airflow version: what was made has a deterministic name per task instance, and a retry
   looks it up by that name before making it again. The first try skips the look-up: no earlier
   try can have made anything, and listing a team's batches or files costs calls.

>>> class Store(dict):
...     def set(self, key, value): self[key] = value
>>> context = {"task_state_store": Store(), "ti": None}
>>> found = reuse_or_make(context, "file_id", load=lambda i: None, find=lambda: None,
...                       make=lambda: "file_1", id_of=str)
>>> found, context["task_state_store"]
(Found(item='file_1', how='made'), {'file_id': 'file_1'})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, Literal, NamedTuple, TypeVar

T = TypeVar("T")

How = Literal["stored", "named", "made"]


class Found(NamedTuple, Generic[T]):
    """What :func:`reuse_or_make` returned, and how: from the state store, by its name, or made now."""

    item: T
    how: How


def is_first_try(context: Mapping[str, Any] | None) -> bool:
    """Whether this is the task instance's first try (an unknown try number counts as a retry).

    >>> class TI: try_number = 1
    >>> is_first_try({"ti": TI()}), is_first_try({})
    (True, False)
    """
    try_number = getattr((context or {}).get("ti"), "try_number", None)
    return isinstance(try_number, int) and try_number <= 1


def reuse_or_make(
    context: Mapping[str, Any] | None,
    state_key: str,
    *,
    load: Callable[[str], T | None],
    find: Callable[[], T | None],
    make: Callable[[], T],
    id_of: Callable[[T], str],
) -> Found[T]:
    """The item an earlier try of this task instance made, if still usable, else a newly made one.

    ``load`` fetches the item whose id the state store kept under ``state_key`` (``None``: gone or
    unusable); ``find`` looks it up by its deterministic name, on a retry only; ``make`` makes it.
    The id ends up in the state store when Airflow has one.
    """
    store = (context or {}).get("task_state_store")
    stored_id = store.get(state_key) if store is not None else None
    found: Found[T] | None = None
    if isinstance(stored_id, str) and stored_id:
        item = load(stored_id)
        if item is not None:
            found = Found(item, "stored")
    if found is None and not is_first_try(context):
        item = find()
        if item is not None:
            found = Found(item, "named")
    if found is None:
        found = Found(make(), "made")
    if store is not None and stored_id != id_of(found.item):
        store.set(state_key, id_of(found.item))
    return found
