"""The hook as tasks use it: :func:`task_hook` opens it for one piece of work and closes it after.

Every operator and the sensor go through this one context manager, so no task leaves HTTP
connections open behind it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from airflow_provider_xai_batch.hooks.xai import XAIBatchHook


@contextmanager
def task_hook(xai_conn_id: str) -> Iterator[XAIBatchHook]:
    """An :class:`XAIBatchHook` whose client is closed when the block ends, however it ends.

    The connection is read lazily, on the first call that needs the client.

    >>> with task_hook("xai_default") as hook:  # doctest: +SKIP
    ...     batch = hook.get_batch("batch_123")
    """
    hook = XAIBatchHook(xai_conn_id=xai_conn_id)
    try:
        yield hook
    finally:
        hook.close()
