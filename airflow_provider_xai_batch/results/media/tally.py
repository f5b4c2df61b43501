"""What the media step stored, re-used and failed to store: the manifest's ``media`` section.

>>> tally = MediaTally()
>>> tally.stored(1024, reused=False)
>>> tally.failure("row-2", 0, "HTTP 403", expired=True, url="https://imgen.x.ai/a.jpeg?sig=secret")
>>> tally.section("download")["failures"]
[{'batch_request_id': 'row-2', 'index': 0, 'reason': 'HTTP 403', 'url': 'https://imgen.x.ai/a.jpeg'}]
>>> print(tally.error_message())
1 media file could not be stored (1 expired: xAI's media URLs expire one hour after generation, so export within the hour or re-run the batch); first: row-2 #0: HTTP 403. Pass allow_partial=True to keep the export without them; the manifest's media.failures names each one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# The manifest names this many failures; the count covers all of them.
MAX_LISTED_FAILURES = 1000
MEDIA_MODES: tuple[str, ...] = ("download", "urls")
EXPIRY_HINT = (
    "xAI's media URLs expire one hour after generation, so export within the hour or re-run the batch"
)


def check_media_mode(media: str) -> str:
    """``media`` if it is a known mode, else ``ValueError``.

    >>> check_media_mode("urls")
    'urls'
    """
    if media not in MEDIA_MODES:
        raise ValueError(f"media must be one of {', '.join(MEDIA_MODES)}, not {media!r}")
    return media


def shown_url(url: str | None) -> str | None:
    """A URL without its query and fragment: signed URLs carry their signature there."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return url[:200]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))[:500]


@dataclass
class MediaTally:
    """Counts of one export's media, and the failures it names."""

    files: int = 0
    bytes: int = 0
    reused: int = 0
    failed: int = 0
    expired: int = 0
    refused: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)

    def stored(self, size: int, *, reused: bool) -> None:
        self.files += 1
        self.bytes += size
        self.reused += reused

    def failure(
        self,
        batch_request_id: str,
        index: int,
        reason: str,
        *,
        expired: bool = False,
        refused: bool = False,
        url: str | None = None,
    ) -> None:
        self.failed += 1
        self.expired += expired
        self.refused += refused
        if len(self.failures) < MAX_LISTED_FAILURES:
            entry: dict[str, Any] = {"batch_request_id": batch_request_id, "index": index, "reason": reason}
            if url is not None:
                entry["url"] = shown_url(url)
            self.failures.append(entry)

    def section(self, mode: str) -> dict[str, Any]:
        """The manifest's ``media`` object."""
        return {
            "mode": mode,
            "files": self.files,
            "bytes": self.bytes,
            "failed": self.failed,
            "reused": self.reused,
            "expired": self.expired,
            "refused": self.refused,
            "failures": list(self.failures),
        }

    def error_message(self) -> str:
        """Why the task fails when media could not be stored."""
        noun = "file" if self.failed == 1 else "files"
        parts = [f"{self.failed} media {noun} could not be stored"]
        reasons = []
        if self.expired:
            reasons.append(f"{self.expired} expired: {EXPIRY_HINT}")
        if self.refused:
            reasons.append(f"{self.refused} refused by the media URL policy")
        if reasons:
            parts.append(f" ({'; '.join(reasons)})")
        if self.failures:
            first = self.failures[0]
            parts.append(f"; first: {first['batch_request_id']} #{first['index']}: {first['reason']}")
        parts.append(
            ". Pass allow_partial=True to keep the export without them; "
            "the manifest's media.failures names each one."
        )
        return "".join(parts)
