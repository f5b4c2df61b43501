"""The input of an ingest pinned down once: a request list (from XCom) or the files to read.

>>> resolve_input(requests=[{"custom_id": "q1", "body": {}}]).sources
['requests']
>>> require_one_input(None, "s3://bucket/in/*.jsonl", "XAIBatchAddRequestsOperator")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_xai_batch.client.errors import XAIInputError
from airflow_provider_xai_batch.sources.locations import InputFile, expand_sources

REQUESTS_LABEL = "requests"


def xcom_source_label(context: Mapping[str, Any] | None) -> str:
    """The label of a request list from XCom: stable across retries, distinct per task and map index.

    The label names the list in error messages and seeds the ids of requests that have none, so two
    mapped task instances adding id-less lists to one batch never produce the same ids.

    >>> class TI:
    ...     task_id, map_index = "add_rows", 3
    >>> xcom_source_label({"ti": TI()}), xcom_source_label(None)
    ('add_rows[3].requests', 'requests')
    """
    ti = (context or {}).get("ti")
    task_id = getattr(ti, "task_id", None)
    if not task_id:
        return REQUESTS_LABEL
    map_index = getattr(ti, "map_index", -1)
    if isinstance(map_index, int) and map_index >= 0:
        return f"{task_id}[{map_index}].{REQUESTS_LABEL}"
    return f"{task_id}.{REQUESTS_LABEL}"


@dataclass(frozen=True)
class ResolvedInput:
    """The input pinned down once, so both passes read exactly the same list or the same files.

    Globs are expanded when the input is resolved; a file appearing later is not picked up by the
    sending pass without having been validated.
    """

    requests: Sequence[Any] | None = None
    files: tuple[InputFile, ...] = ()
    label: str = REQUESTS_LABEL

    @property
    def sources(self) -> list[str]:
        """What is read, in order: the list label, or each file's URI."""
        return [self.label] if self.requests is not None else [item.uri for item in self.files]


def require_one_input(requests: Any, source: Any, owner: str) -> None:
    """Refuse, when a task is defined, anything but exactly one of ``requests`` and ``source``."""
    if (requests is None) == (source is None):
        raise ValueError(
            f"{owner}: give exactly one of 'requests' (a list of request objects) or 'source' (URIs of JSONL files)"
        )


def resolve_input(
    *,
    requests: Any = None,
    source: Any = None,
    source_conn_id: str | None = None,
    source_label: str = REQUESTS_LABEL,
) -> ResolvedInput:
    """Check that exactly one of ``requests`` or ``source`` is given, and pin it down.

    ``requests`` must be a list (or tuple) of request objects, typically from XCom; ``source`` one
    URI or a list of URIs, globs allowed (expanded here, once).

    >>> resolve_input(requests=[{"custom_id": "q1", "body": {}}]).sources
    ['requests']
    """
    if (requests is None) == (source is None):
        raise XAIInputError(
            "give exactly one of 'requests' (a list of request objects) or 'source' (JSONL files)",
            source=source_label if source is None else "source",
        )
    if source is not None:
        return ResolvedInput(files=expand_sources(source, conn_id=source_conn_id))
    if isinstance(requests, (str, bytes, bytearray, Mapping)) or not isinstance(requests, Sequence):
        hint = (
            " (a templated string stays a string; pass the XComArg itself, or set "
            "render_template_as_native_obj=True on the DAG)"
            if isinstance(requests, str)
            else ""
        )
        raise XAIInputError(
            f"requests must be a list of request objects, got {type(requests).__name__}{hint}",
            source=source_label,
        )
    return ResolvedInput(requests=requests, label=source_label)
