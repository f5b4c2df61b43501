"""Images and videos of a batch's results, stored beside the results: ``export_results(media="download")``.

xAI's image and video results carry URLs that expire one hour after generation (or base64 data).
The export stores each item at ``<output_path>/media/<batch_request_id>-<n>.<ext>`` and records it
on the row as ``"media": [{"uri", "content_type", "bytes", "sha256"}]``. Pure decisions live in
:mod:`.policy` (which URLs may be fetched), :mod:`.naming` (file names, extensions),
:mod:`.items` (what a response names) and :mod:`.tally` (the manifest's counts); fetching and
storing are in :mod:`.fetch`, :mod:`.storage` and :mod:`.step`.

>>> from airflow_provider_xai_batch.results.media import DEFAULT_MEDIA_HOSTS, MediaPolicy
>>> DEFAULT_MEDIA_HOSTS
('imgen.x.ai', 'vidgen.x.ai')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from airflow_provider_xai_batch.client import XAIError
from airflow_provider_xai_batch.results.media.policy import (
    DEFAULT_MAX_MEDIA_BYTES,
    DEFAULT_MEDIA_HOSTS,
    MediaPolicy,
    parse_hosts,
)
from airflow_provider_xai_batch.results.media.tally import MEDIA_MODES, MediaTally, check_media_mode


class MediaExportError(XAIError):
    """Some images or videos of an export could not be stored (expired, refused, or failing)."""

    def __init__(self, message: str, tally: MediaTally) -> None:
        super().__init__(message)
        self.failed = tally.failed
        self.expired = tally.expired


def media_settings_from_extra(extra: Mapping[str, Any]) -> dict[str, Any]:
    """``export_results`` keywords from an ``xai`` connection's extra.

    ``media_hosts`` (list or comma-separated) adds hosts to the allow-list,
    ``media_allow_private_addresses`` lets hosts resolve to private ranges, ``media_max_bytes``
    caps each file.

    >>> media_settings_from_extra({"media_hosts": "cdn.example.com", "media_max_bytes": "1000", "timeout": 5})
    {'allow_media_hosts': ('cdn.example.com',), 'media_max_bytes': 1000}
    """
    settings: dict[str, Any] = {}
    hosts = parse_hosts(extra.get("media_hosts"))
    if hosts:
        settings["allow_media_hosts"] = hosts
    private = extra.get("media_allow_private_addresses")
    if private is not None and private != "":
        settings["media_allow_private_addresses"] = str(private).strip().lower() in ("1", "true", "yes", "on")
    limit = extra.get("media_max_bytes")
    if limit is not None and limit != "":
        settings["media_max_bytes"] = int(limit)
    return settings


def export_media_policy(
    base_url: str, media: str, hosts: Iterable[str], allow_private: bool, max_bytes: int | None
) -> MediaPolicy:
    """The media policy of one export, after checking its ``media`` mode (an unknown one fails first).

    Both exports (``export_results``, ``export_rounds``) take the same media keywords; this is
    where they become a policy.

    >>> export_media_policy("https://api.x.ai/v1", "download", ["cdn.example.com"], False, None).max_bytes > 0
    True
    """
    check_media_mode(media)
    return MediaPolicy.for_connection(
        base_url, extra_hosts=hosts, allow_private=allow_private, max_bytes=max_bytes
    )


def media_export_kwargs(
    hook: Any,
    conn_id: str,
    *,
    media: str,
    allow_media_hosts: Iterable[str] | None = None,
) -> dict[str, Any]:
    """``export_results`` media keywords for an operator: its arguments over the connection's extra.

    The hosts of both are allowed; a missing connection (key from the environment) adds nothing.
    """
    try:
        extra = hook.get_connection(conn_id).extra_dejson
    except Exception:  # no stored connection: the defaults hold
        extra = {}
    settings = media_settings_from_extra(extra if isinstance(extra, Mapping) else {})
    hosts = (*settings.get("allow_media_hosts", ()), *parse_hosts(list(allow_media_hosts or ())))
    settings["allow_media_hosts"] = tuple(dict.fromkeys(hosts))
    settings["media"] = check_media_mode(media)
    return settings


__all__ = [
    "DEFAULT_MAX_MEDIA_BYTES",
    "DEFAULT_MEDIA_HOSTS",
    "MEDIA_MODES",
    "MediaExportError",
    "MediaPolicy",
    "check_media_mode",
    "export_media_policy",
    "media_export_kwargs",
    "media_settings_from_extra",
]
