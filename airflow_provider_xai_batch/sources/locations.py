"""Where requests are read from: locations and globs expanded into files, in a deterministic order.

>>> has_glob("s3://bucket/in/*.jsonl")
True
>>> [item.uri for item in expand_sources("/data/in/*.jsonl")]  # doctest: +SKIP
['file:///data/in/part-1.jsonl', 'file:///data/in/part-2.jsonl.gz']
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from airflow.sdk import ObjectStoragePath

from airflow_provider_xai_batch.client.errors import XAIInputError
from airflow_provider_xai_batch.uris import as_uri

_GLOB_CHARACTERS = frozenset("*?[")


def has_glob(uri: str) -> bool:
    """Whether a URI is a pattern (``*``, ``**``, ``?`` or ``[...]``) rather than one file.

    >>> has_glob("s3://bucket/in/*.jsonl"), has_glob("s3://bucket/in/part-1.jsonl")
    (True, False)
    """
    return any(character in _GLOB_CHARACTERS for character in uri)


@dataclass(frozen=True)
class InputFile:
    """One JSONL file to read: its URI (the label in messages and generated ids) and its path."""

    uri: str
    path: Any  # an ObjectStoragePath; typed loosely because Airflow ships no type information


def expand_sources(source: Any, *, conn_id: str | None = None) -> tuple[InputFile, ...]:
    """Expand one location or a list of them into the files to read, in a deterministic order.

    Locations are taken in the order given; the files a glob matches are sorted by URI. A file
    matched twice is read once. A glob matching no file, a missing file or a folder is an
    :class:`XAIInputError` naming the location.

    >>> [item.uri for item in expand_sources("/data/in/*.jsonl")]  # doctest: +SKIP
    ['file:///data/in/part-1.jsonl', 'file:///data/in/part-2.jsonl.gz']
    """
    locations = _locations(source)
    files: list[InputFile] = []
    seen: set[str] = set()
    for location in locations:
        for item in _expand_one(location, conn_id):
            if item.uri not in seen:
                seen.add(item.uri)
                files.append(item)
    return tuple(files)


def _locations(source: Any) -> list[Any]:
    if isinstance(source, (str, os.PathLike, ObjectStoragePath)):
        return [source]
    if isinstance(source, Sequence) and not isinstance(source, (bytes, bytearray)):
        if not source:
            raise XAIInputError("the list of locations is empty", source="source")
        for index, item in enumerate(source):
            if not isinstance(item, (str, os.PathLike, ObjectStoragePath)):
                raise XAIInputError(
                    f"a location must be a URI string or an ObjectStoragePath, got {type(item).__name__}",
                    source="source",
                    position=f"item {index}",
                )
        return list(source)
    raise XAIInputError(
        f"source must be a URI or a list of URIs, got {type(source).__name__}", source="source"
    )


def _path_for(location: Any, conn_id: str | None) -> Any:
    if isinstance(location, ObjectStoragePath):
        return location
    return ObjectStoragePath(as_uri(os.fspath(location)), conn_id=conn_id)


def _expand_one(location: Any, conn_id: str | None) -> list[InputFile]:
    path = _path_for(location, conn_id)
    label = str(path)
    fs = path.fs
    if has_glob(path.path):
        matches = fs.glob(path.path, detail=True)
        found = sorted(name for name, info in matches.items() if info.get("type") != "directory")
        if not found:
            raise XAIInputError("the pattern matches no file", source=label)
        return [_file_at(path, fs.unstrip_protocol(name), conn_id) for name in found]
    try:
        info = fs.info(path.path)
    except FileNotFoundError:
        raise XAIInputError("no such file", source=label) from None
    if info.get("type") == "directory":
        raise XAIInputError("this is a folder; name its files with a glob such as .../*.jsonl", source=label)
    return [InputFile(label, path)]


def _file_at(pattern_path: Any, uri: str, conn_id: str | None) -> InputFile:
    # Reuse the pattern's connection so every match is read with the same credentials.
    storage_conn = getattr(pattern_path, "conn_id", None) or conn_id
    return InputFile(uri, ObjectStoragePath(uri, conn_id=storage_conn))
