"""Writing and reading JSONL files (plain or gzip-compressed)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def write_jsonl(
    path: Path, rows: Iterable[Any], *, compress: bool = False, final_newline: bool = True
) -> Path:
    """Write rows one per line (dicts JSON-encoded compactly; str/bytes as they are); return ``path``."""
    lines = []
    for row in rows:
        if isinstance(row, bytes):
            lines.append(row)
        elif isinstance(row, str):
            lines.append(row.encode("utf-8"))
        else:
            lines.append(json.dumps(row, separators=(",", ":")).encode("utf-8"))
    data = b"\n".join(lines) + (b"\n" if lines and final_newline else b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, compresslevel=1) if compress else data)
    return path


def jsonl_rows(path: Path) -> Iterator[dict[str, Any]]:
    """The objects of a JSONL file, blank lines skipped."""
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)
