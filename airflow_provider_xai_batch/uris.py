"""Locations as users write them, turned into URIs that ``ObjectStoragePath`` reads the same way.

>>> as_uri("s3://bucket/in/*.jsonl"), as_uri("/data/in.jsonl")
('s3://bucket/in/*.jsonl', 'file:///data/in.jsonl')
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

# Where the example DAGs and ``demo/sample_input.py`` keep their files, unless told otherwise.
EXAMPLE_ROOT_ENV = "XAI_BATCH_EXAMPLE_ROOT"
EXAMPLE_ROOT_FOLDER = "xai-batch-example"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


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


def path_safe(text: str) -> str:
    """``text`` as one folder name every tool takes: anything but letters, digits, ``.``, ``_`` and ``-`` becomes ``-``.

    Run ids hold ``:`` and ``+`` (``manual__2026-12-06T10:15:00+00:00``), which some shells,
    Windows tools, Hadoop-style paths and URL handling trip over. Registered on the example DAGs
    as the template filter ``path_safe``: ``{{ run_id | path_safe }}``.

    >>> path_safe("manual__2026-12-06T10:15:00.123456+00:00")
    'manual__2026-12-06T10-15-00.123456-00-00'
    >>> path_safe("scheduled__2026-03-01T00:00:00+00:00")
    'scheduled__2026-03-01T00-00-00-00-00'
    """
    return _UNSAFE.sub("-", text)


def example_root(environ: Mapping[str, str]) -> str:
    """The folder URI the example DAGs read sample input from and write results under.

    ``XAI_BATCH_EXAMPLE_ROOT`` when set (any URI or local path), else ``xai-batch-example`` in the
    Airflow home (``AIRFLOW_HOME``, default ``~/airflow``): one per user and per Airflow home,
    never one folder shared by the whole machine.

    >>> example_root({"AIRFLOW_HOME": "/srv/airflow"})
    'file:///srv/airflow/xai-batch-example'
    >>> example_root({"XAI_BATCH_EXAMPLE_ROOT": "s3://bucket/xai/", "AIRFLOW_HOME": "/srv/airflow"})
    's3://bucket/xai'
    """
    explicit = environ.get(EXAMPLE_ROOT_ENV, "").strip()
    if explicit:
        return as_uri(explicit).rstrip("/")
    home = environ.get("AIRFLOW_HOME") or os.path.join(os.path.expanduser("~"), "airflow")
    return as_uri(os.path.join(home, EXAMPLE_ROOT_FOLDER))
