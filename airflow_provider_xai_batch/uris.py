"""Locations as users write them, turned into URIs that ``ObjectStoragePath`` reads the same way.

>>> as_uri("s3://bucket/in/*.jsonl"), as_uri("/data/in.jsonl")
('s3://bucket/in/*.jsonl', 'file:///data/in.jsonl')
"""

from __future__ import annotations

import os


def as_uri(location: str) -> str:
    """A URI for a user's location: plain local paths (``~`` and relative ones too) become absolute ``file://`` URIs.

    A location that already names a scheme is returned as it is, so reading the same input or
    writing the same folder twice always resolves to the same URI.

    >>> as_uri("gs://bucket/out"), as_uri("/data/out/")
    ('gs://bucket/out', 'file:///data/out')
    """
    if "://" in location:
        return location
    return "file://" + os.path.abspath(os.path.expanduser(location))
