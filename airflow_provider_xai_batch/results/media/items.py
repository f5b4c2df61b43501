"""The media a successful response names, in the order of its items.

>>> media_items("image_generation", {"data": [{"url": "https://imgen.x.ai/a.jpeg"}, {"b64_json": "iVBO"}]})
[MediaItem(position=0, url='https://imgen.x.ai/a.jpeg', b64_json=None), MediaItem(position=1, url=None, b64_json='iVBO')]
>>> media_items("video_generation", {"video": {"url": "https://vidgen.x.ai/v.mp4"}})
[MediaItem(position=0, url='https://vidgen.x.ai/v.mp4', b64_json=None)]
>>> media_items("chat_get_completion", {"choices": []})
[]
"""

from __future__ import annotations

from typing import Any, NamedTuple

MEDIA_KINDS: frozenset[str] = frozenset({"image_generation", "video_generation"})


class MediaItem(NamedTuple):
    """One image or video of a response: a URL to fetch, or base64 data to decode."""

    position: int
    url: str | None
    b64_json: str | None


def media_items(kind: str, response: Any) -> list[MediaItem]:
    """Every image (``data[]``) or video (``video``, or ``data[]``) of a response.

    An entry that carries neither a URL nor data still takes its place (and fails when stored),
    so positions in the row's ``media`` match positions in the response.
    """
    if kind not in MEDIA_KINDS or not isinstance(response, dict):
        return []
    entries: list[Any] = []
    data = response.get("data")
    if isinstance(data, list):
        entries.extend(data)
    video = response.get("video")
    if isinstance(video, dict):
        entries.append(video)
    items: list[MediaItem] = []
    for index, entry in enumerate(entries):
        url = entry.get("url") if isinstance(entry, dict) else None
        b64 = entry.get("b64_json") if isinstance(entry, dict) else None
        items.append(
            MediaItem(
                index,
                url if isinstance(url, str) and url else None,
                b64 if isinstance(b64, str) and b64 else None,
            )
        )
    return items
