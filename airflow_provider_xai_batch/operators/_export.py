"""Where the operators' results step finds the input's metadata, and the options it passes through.

``XAIBatchOperator`` has its input at hand when it writes results: it reads it again (the same
deterministic ids as when it was sent, on a retry or after resubmission rounds too) into a
temporary sidecar. The create/add/results pipeline keeps a sidecar per batch under a
``metadata_path`` both the add and the results operators are given. See
:mod:`airflow_provider_xai_batch.results.metadata`.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Mapping
from typing import Any

from airflow_provider_xai_batch.client import XAIInputError
from airflow_provider_xai_batch.logs import LogLike
from airflow_provider_xai_batch.results.metadata import (
    MetadataEntry,
    read_sidecar,
    run_prefix,
    write_sidecar,
)
from airflow_provider_xai_batch.results.staging import OutputFolder, resolve_output_folder
from airflow_provider_xai_batch.sources import ResolvedInput, iter_native, resolve_input, xcom_source_label


def batch_metadata_folder(metadata_path: Any, conn_id: str | None, batch_id: str) -> OutputFolder:
    """The sidecar folder of one batch: ``<metadata_path>/<batch_id>``.

    >>> batch_metadata_folder("/tmp/meta", None, "batch_1").uri()
    'file:///tmp/meta/batch_1'
    """
    return OutputFolder(resolve_output_folder(metadata_path, conn_id) / batch_id)


def sidecar_prefix(context: Mapping[str, Any] | None) -> str:
    """One add task's file prefix in a batch's sidecar folder: its task id and map index.

    >>> class TI:
    ...     task_id, map_index = "add_rows", 3
    >>> sidecar_prefix({"ti": TI()}), sidecar_prefix(None)
    ('add_rows-3', 'requests')
    """
    return run_prefix(xcom_source_label(context).removesuffix(".requests"))


def write_batch_sidecar(
    resolved: ResolvedInput,
    metadata_path: Any,
    conn_id: str | None,
    batch_id: str,
    context: Mapping[str, Any] | None,
    log: LogLike,
) -> None:
    """Write an add task's sidecar runs for ``batch_id`` (the same files again on a retry)."""
    folder = batch_metadata_folder(metadata_path, conn_id, batch_id)
    count = write_sidecar(folder, iter_native(resolved), prefix=sidecar_prefix(context))
    log.info("request kinds and metadata of %d requests written to %s", count, folder.uri())


@contextlib.contextmanager
def task_input_metadata(task: Any, context: Mapping[str, Any] | None) -> Iterator[Iterator[MetadataEntry]]:
    """The metadata of an operator's own input (``requests``/``source``), sorted by request id.

    The sidecar lives in a temporary local folder for the duration of the block. An input that can
    no longer be read (files deleted while the batch ran) gives no metadata and a warning: the
    results themselves are still written.
    """
    with tempfile.TemporaryDirectory(prefix="xai-batch-metadata-") as scratch:
        folder = OutputFolder(resolve_output_folder(scratch))
        try:
            resolved = resolve_input(
                requests=task.requests,
                source=task.source,
                source_conn_id=task.source_conn_id,
                source_label=xcom_source_label(context),
            )
            write_sidecar(folder, iter_native(resolved))
        except (XAIInputError, OSError) as error:
            task.log.warning(
                "the input cannot be read again (%s): results are written without its metadata, "
                "and failed rows without their kind",
                error,
            )
            yield iter(())
            return
        yield read_sidecar(folder)
