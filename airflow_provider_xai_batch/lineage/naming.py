"""Dataset names for object-storage URIs, following OpenLineage's naming conventions; pure.

Local files are ``("file", "/absolute/path")``; anything with a bucket or host is
``("<scheme>://<bucket>", "<key>")``, as OpenLineage names S3, GCS and Azure objects.
"""

from __future__ import annotations

from urllib.parse import urlsplit

LOCAL_NAMESPACE = "file"


def dataset_name(uri: str) -> tuple[str, str]:
    """The ``(namespace, name)`` OpenLineage expects for a file at ``uri``.

    >>> dataset_name("file:///data/in/part-1.jsonl")
    ('file', '/data/in/part-1.jsonl')
    >>> dataset_name("/data/out/manifest.json")
    ('file', '/data/out/manifest.json')
    >>> dataset_name("gs://bucket/results/succeeded.jsonl")
    ('gs://bucket', 'results/succeeded.jsonl')
    """
    parts = urlsplit(uri)
    if parts.scheme in ("", "file", "local"):
        path = parts.path if parts.scheme else uri
        return LOCAL_NAMESPACE, "/" + path.lstrip("/")
    return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/") or "/"
