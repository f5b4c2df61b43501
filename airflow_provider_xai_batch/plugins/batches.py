"""The Airflow plugin the provider ships: the *xAI batches* page under *Browse*.

Declared in the provider info, so installing the package is enough. Airflow 3.1+ mounts the pages
(``fastapi_apps``) and lists them in the menu (``external_views``); on older versions the plugin
adds nothing and the provider's operators work as before.

>>> XAIBatchPlugin.name
'xai_batch'
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_xai_batch.links import PAGE_PREFIX


def pages_supported(version: str | None = None) -> bool:
    """Whether this Airflow shows plugin pages in its UI (3.1 and later).

    >>> pages_supported("3.0.6"), pages_supported("3.1.0"), pages_supported("3.3.0rc1")
    (False, True, True)
    """
    if version is None:
        from airflow import __version__

        version = str(__version__)
    major, minor = (int("".join(ch for ch in part if ch.isdigit()) or 0) for part in version.split(".")[:2])
    return (major, minor) >= (3, 1)


def _fastapi_apps() -> list[dict[str, Any]]:
    if not pages_supported():
        return []
    from airflow_provider_xai_batch.plugins.app import create_app

    return [{"app": create_app(), "url_prefix": PAGE_PREFIX, "name": "xAI batches"}]


def _external_views() -> list[dict[str, Any]]:
    if not pages_supported():
        return []
    return [
        {
            "name": "xAI batches",
            "href": f"{PAGE_PREFIX}/",
            "destination": "nav",
            "category": "browse",
            "url_route": "xai-batches",
        }
    ]


class XAIBatchPlugin(AirflowPlugin):
    """The batches page; see :mod:`airflow_provider_xai_batch.plugins.app` for its routes."""

    name = "xai_batch"
    fastapi_apps = _fastapi_apps()
    external_views = _external_views()
