"""Where batch requests come from: an XCom list, or JSONL files in object storage.

Adding requests is done in two passes over the same input, so that nothing is sent unless
everything is valid, and memory never grows with the input:

1. :func:`validate` reads everything once and checks every request (shape, endpoint, body, id,
   size, ids reused for other content across all files), then returns an :class:`InputSummary`.
2. :func:`iter_located` streams the normalised native requests again, for sending, each with its
   file and line (or list label and item), so that a request the service rejects is named there.
   :func:`iter_native` gives the same requests without their places.

>>> resolved = resolve_input(requests=[{"custom_id": "q1", "body": {
...     "model": "grok-4.3", "messages": [{"role": "user", "content": "Hi"}]}}])
>>> validate(resolved).unique
1
>>> [request["batch_request_id"] for request in iter_native(resolved)]
['q1']

Files are read one line at a time: ``source`` is one URI or a list of URIs, any scheme
``ObjectStoragePath`` knows (``file://``, ``s3://``, ``gs://`` ...; a plain local path too), globs
allowed (``*``, ``**``, ``?``), ``.jsonl`` or gzip-compressed ``.jsonl.gz``. A request without an
id gets a deterministic one from its file URI and line (or list label and index), so re-sending
the same input after a failure adds nothing twice.

Modules: :mod:`.locations` expands locations and globs into files, :mod:`.resolve` pins the input
down, :mod:`.reading` streams its requests, :mod:`.ingest` validates and sends them.
"""

from __future__ import annotations

from airflow_provider_xai_batch.logs import LogLike
from airflow_provider_xai_batch.sources.ingest import (
    InputSummary,
    iter_located,
    iter_native,
    validate,
)
from airflow_provider_xai_batch.sources.locations import InputFile, expand_sources, has_glob
from airflow_provider_xai_batch.sources.reading import GZIP_MAGIC, is_gzip
from airflow_provider_xai_batch.sources.resolve import (
    REQUESTS_LABEL,
    ResolvedInput,
    require_one_input,
    resolve_input,
    xcom_source_label,
)
from airflow_provider_xai_batch.uris import as_uri

__all__ = [
    "GZIP_MAGIC",
    "REQUESTS_LABEL",
    "InputFile",
    "InputSummary",
    "LogLike",
    "ResolvedInput",
    "as_uri",
    "expand_sources",
    "has_glob",
    "is_gzip",
    "iter_located",
    "iter_native",
    "require_one_input",
    "resolve_input",
    "validate",
    "xcom_source_label",
]
