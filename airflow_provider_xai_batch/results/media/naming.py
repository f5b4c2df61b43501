"""Where a media file is stored and what it is called: pure functions of the result and the content.

>>> media_file_name("row-000001", 0, "png")
'row-000001-0.png'
>>> media_file_name("a/b c", 1, "mp4")
'a_b_c~facd05e8-1.mp4'
>>> extension_for("image/jpeg; charset=binary", None), extension_for(None, "https://h/x.webp?sig=1")
('jpeg', 'webp')
>>> sniff_content_type(b"\\x89PNG\\r\\n\\x1a\\n....")
'image/png'
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from urllib.parse import urlsplit

MEDIA_FOLDER = "media"

# Content type -> file extension, for the types xAI's image and video models produce and a few
# neighbours; anything else is stored as ``.bin`` with its content type kept in the row.
EXTENSIONS: dict[str, str] = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/avif": "avif",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "video/quicktime": "mov",
}
CONTENT_TYPES: dict[str, str] = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "avif": "image/avif",
    "mp4": "video/mp4",
    "webm": "video/webm",
    "mov": "video/quicktime",
}
FALLBACK_EXTENSION = "bin"
FALLBACK_CONTENT_TYPE = "application/octet-stream"

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def media_file_name(batch_request_id: str, index: int, ext: str) -> str:
    """``<batch_request_id>-<index>.<ext>``; characters unsafe in object keys become ``_``.

    When the id had to change, a short digest of the real id keeps two ids from colliding.
    """
    safe = _SAFE.sub("_", batch_request_id)
    if safe != batch_request_id or safe.startswith("."):
        digest = hashlib.blake2b(batch_request_id.encode(), digest_size=4).hexdigest()
        safe = f"{safe.lstrip('.') or '_'}~{digest}"
    return f"{safe}-{index}.{ext}"


def media_path(name: str) -> str:
    """The file's path relative to the export folder."""
    return f"{MEDIA_FOLDER}/{name}"


def normalise_content_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


def extension_for(content_type: str | None, url: str | None) -> str:
    """The extension for a content type; failing that, a known extension in the URL's path."""
    known = EXTENSIONS.get(normalise_content_type(content_type) or "")
    if known is not None:
        return known
    if url:
        suffix = posixpath.splitext(urlsplit(url).path)[1].lstrip(".").lower()
        if suffix in CONTENT_TYPES:
            return "jpeg" if suffix == "jpg" else suffix
    return FALLBACK_EXTENSION


def content_type_for(content_type: str | None, ext: str) -> str:
    """The content type a row records: as served when it is specific, else the extension's."""
    served = normalise_content_type(content_type)
    if served and served != FALLBACK_CONTENT_TYPE:
        return served
    return CONTENT_TYPES.get(ext, served or FALLBACK_CONTENT_TYPE)


def sniff_content_type(head: bytes) -> str | None:
    """The content type of decoded ``b64_json`` data, from its first bytes."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[4:8] == b"ftyp":
        return "video/mp4"
    return None
