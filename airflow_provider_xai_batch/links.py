"""The *xAI batch* button on a task: a link from the task instance to the batch's page.

Every task that makes, fills, waits for or exports a batch records the batch's page as soon as it
knows the batch id (before it defers), in an XCom of its own try under
:data:`LINK_XCOM_KEY`. Airflow's UI and REST API read that XCom back for the button, so the link
is there while the task is deferred and after it ends, per try and per mapped task instance.

That XCom is also how the batches page knows which DAG run and task made a batch: the page looks
the batch id up among these records (see :mod:`airflow_provider_xai_batch.plugins.batches`).
A task that uploads a file has no batch yet: its button opens the connection's batch list,
narrowed to batches made from that file.

>>> batch_page_path("batch_1", "xai_default")
'/xai-batch/batches/batch_1?conn_id=xai_default'
>>> batch_id_from_link(batch_page_path("batch_1", "xai_default"))
'batch_1'
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlencode

from airflow.providers.common.compat.sdk import BaseOperatorLink, XCom

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import TaskInstanceKey

# Where the provider's plugin serves its pages, under the API server's own address.
PAGE_PREFIX = "/xai-batch"
# Airflow's default key for an operator link's XCom (``_link_<class name>``), kept literal so the
# batches page can find the records without importing the operators.
LINK_XCOM_KEY = "_link_XAIBatchLink"
LINK_NAME = "xAI batch"

log = logging.getLogger(__name__)

_BATCH_IN_LINK = re.compile(re.escape(PAGE_PREFIX) + r"/batches/([^/?#]+)")


def batch_page_path(batch_id: str, conn_id: str) -> str:
    """The path of one batch's page, relative to the API server's base URL."""
    return f"{PAGE_PREFIX}/batches/{quote(batch_id, safe='')}?{urlencode({'conn_id': conn_id})}"


def file_page_path(file_id: str, conn_id: str) -> str:
    """The batch list of ``conn_id``, narrowed to the batches made from ``file_id``.

    >>> file_page_path("file_1", "xai_default")
    '/xai-batch/?conn_id=xai_default&file_id=file_1'
    """
    return f"{PAGE_PREFIX}/?{urlencode({'conn_id': conn_id, 'file_id': file_id})}"


def batch_id_from_link(link: str) -> str | None:
    """The batch id a recorded link points at, or ``None`` (a file link, anything else)."""
    match = _BATCH_IN_LINK.search(link)
    return unquote(match.group(1)) if match else None


def _base_url() -> str:
    # The API server's public address when configured, so the link also works from a log
    # viewer or an e-mail; otherwise a path the UI resolves against its own address.
    try:
        from airflow.providers.common.compat.sdk import conf

        base = conf.get("api", "base_url", fallback="") or ""
    except Exception:  # no configuration to read: a relative link still works in the UI
        base = ""
    return base.rstrip("/")


def _push(context: Any, path: str) -> None:
    try:
        context["ti"].xcom_push(key=LINK_XCOM_KEY, value=_base_url() + path)
    except Exception as error:  # a missing button must never fail the work itself
        log.warning("Could not record the xAI batch link: %s", error)


class XAIBatchLink(BaseOperatorLink):
    """The *xAI batch* button: opens the batch's page (the batch list for an upload).

    Operators declare it in ``operator_extra_links`` and call :meth:`persist` once the batch id
    is known.

    >>> XAIBatchLink().xcom_key == LINK_XCOM_KEY
    True
    """

    name = LINK_NAME

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        value = XCom.get_value(ti_key=ti_key, key=self.xcom_key)
        return value if isinstance(value, str) else ""

    @staticmethod
    def persist(context: Any, batch_id: str, conn_id: str) -> None:
        """Record the batch's page for this try of the task (call before deferring)."""
        _push(context, batch_page_path(batch_id, conn_id))

    @staticmethod
    def persist_file(context: Any, file_id: str, conn_id: str) -> None:
        """Record the batch list narrowed to ``file_id``: an upload has no batch yet."""
        _push(context, file_page_path(file_id, conn_id))
