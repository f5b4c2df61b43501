"""Re-attach a retry to the batch an earlier try of the same task instance created.

Creating a batch is the one call that is not safe to repeat, and XCom is cleared between tries,
so it cannot carry the batch id to a retry. Two lines of defence, in this order (the order of
:func:`~airflow_provider_xai_batch.task_state.reuse_or_make`, shared with file uploads):

1. Airflow >= 3.3: the task state store (``context["task_state_store"]``) keeps the batch id under
   :data:`BATCH_ID_STATE_KEY`, scoped to the task instance, across tries.
2. Every Airflow version: the batch gets a deterministic name per task instance
   (:func:`batch_name_for`), and a retry looks for a usable batch with that name before creating
   one. On 3.3 this covers a crash between the create call and the state-store write.

A batch is reused only while it is usable: not cancelled, failed or expired.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_xai_batch.client.errors import XAINotFoundError
from airflow_provider_xai_batch.client.models import Batch
from airflow_provider_xai_batch.task_state import reuse_or_make

if TYPE_CHECKING:
    from airflow_provider_xai_batch.hooks.xai import XAIBatchHook
    from airflow_provider_xai_batch.logs import LogLike

BATCH_ID_STATE_KEY = "xai_batch_id"
_SUFFIX_LENGTH = 10


def task_instance_key(context: Mapping[str, Any]) -> tuple[str, str, str, int]:
    """``(dag_id, task_id, run_id, map_index)`` of the running task instance."""
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    return (
        str(ti.dag_id),
        str(ti.task_id),
        str(ti.run_id),
        map_index if isinstance(map_index, int) else -1,
    )


def name_suffix(dag_id: str, task_id: str, run_id: str, map_index: int = -1) -> str:
    """A short digest that tells task instances apart; the same for every try of one of them.

    >>> name_suffix("nightly", "create", "manual__2026-01-01T00:00:00+00:00")
    '06af17f6bf'
    """
    key = "\0".join((dag_id, task_id, run_id, str(map_index)))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:_SUFFIX_LENGTH]


def batch_name_for(name: str, context: Mapping[str, Any]) -> str:
    """The batch name for this task instance: the user's name plus a short per-instance suffix.

    Every try of one task instance gets the same name; other runs, tasks and map indexes get
    other names, so a retry finds its own batch and nobody else's.

    >>> batch_name_for("nightly-eval", context)  # doctest: +SKIP
    'nightly-eval-3f9a2c1b7d'
    """
    return f"{name}-{name_suffix(*task_instance_key(context))}"


def _usable_batch(hook: XAIBatchHook, batch_id: str, log: LogLike | None) -> Batch | None:
    try:
        batch = hook.get_batch(batch_id)
    except XAINotFoundError:
        if log is not None:
            log.warning("batch %s from an earlier try no longer exists; creating a new one", batch_id)
        return None
    if not batch.is_reusable:
        if log is not None:
            log.warning("batch %s from an earlier try is %s; creating a new one", batch_id, batch.status)
        return None
    return batch


def _same_kind(batch: Batch, input_file_id: str | None) -> bool:
    return batch.is_file_batch == (input_file_id is not None)


def create_or_reattach(
    hook: XAIBatchHook,
    name: str,
    context: Mapping[str, Any],
    *,
    input_file_id: str | None = None,
    log: LogLike | None = None,
    state_key: str = BATCH_ID_STATE_KEY,
) -> Batch:
    """The batch of this task instance: the one an earlier try created if still usable, else a new one.

    The batch is named :func:`batch_name_for` ``(name, context)``. Its id is kept in the task state
    store when Airflow has one (>= 3.3). On a retry (try number above 1) without a usable stored
    id, a usable batch with the same name is reused. The first try skips the name lookup: no
    earlier try can have created anything, and listing a team's batches costs calls. A task that
    makes several batches keeps each under its own ``state_key`` (and gives each its own ``name``).

    >>> batch = create_or_reattach(hook, "nightly-eval", context, log=self.log)  # doctest: +SKIP
    >>> batch.name  # doctest: +SKIP
    'nightly-eval-3f9a2c1b7d'
    """
    full_name = batch_name_for(name, context)

    def by_name() -> Batch | None:
        found = hook.find_batch_by_name(full_name)
        return found if found is not None and _same_kind(found, input_file_id) else None

    found = reuse_or_make(
        context,
        state_key,
        load=lambda batch_id: _usable_batch(hook, batch_id, log),
        find=by_name,
        make=lambda: hook.create_batch(full_name, input_file_id=input_file_id),
        id_of=lambda batch: batch.batch_id,
    )
    if log is not None:
        batch_id = found.item.batch_id
        if found.how == "stored":
            log.info("re-attaching to batch %s (%s), created by an earlier try", batch_id, full_name)
        elif found.how == "named":
            log.info("re-attaching to batch %s, found by its name %s", batch_id, full_name)
        else:
            log.info("created batch %s named %s", batch_id, full_name)
    return found.item
