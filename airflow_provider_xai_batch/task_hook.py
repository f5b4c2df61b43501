"""The hook as tasks use it: :func:`task_hook` opens it for one piece of work and closes it after.

Every operator and the sensor go through this one context manager, so no task leaves HTTP
connections open behind it, and every client error leaves a task as the matching
:mod:`~airflow_provider_xai_batch.exceptions` class: those no retry can fix fail the task at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from airflow_provider_xai_batch.client.errors import XAIError
from airflow_provider_xai_batch.exceptions import XAIBatchTaskError, task_error_for
from airflow_provider_xai_batch.hooks.xai import XAIBatchHook


@contextmanager
def task_hook(xai_conn_id: str) -> Iterator[XAIBatchHook]:
    """An :class:`XAIBatchHook` whose client is closed when the block ends, however it ends.

    The connection is read lazily, on the first call that needs the client. A client error
    raised in the block is re-raised as its task error (:func:`~.exceptions.task_error_for`),
    with the same message and the original as ``__cause__``.

    >>> with task_hook("xai_default") as hook:  # doctest: +SKIP
    ...     batch = hook.get_batch("batch_123")
    """
    hook = XAIBatchHook(xai_conn_id=xai_conn_id)
    try:
        yield hook
    except XAIBatchTaskError:
        raise
    except XAIError as error:
        raise task_error_for(error) from error
    finally:
        hook.close()
