"""Operators that create a batch, add requests to it and cancel it, one step per task.

``XAIBatchOperator`` (all of it in one task) lives in :mod:`.one_task`; importing it from here
still works, with a deprecation warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context

from airflow_provider_xai_batch.hooks.xai import XAIBatchHook
from airflow_provider_xai_batch.lineage import XAIBatchLineageMixin
from airflow_provider_xai_batch.links import XAIBatchLink
from airflow_provider_xai_batch.operators._export import write_batch_sidecar
from airflow_provider_xai_batch.operators._ingest import send_input, validate_task_input
from airflow_provider_xai_batch.operators._resume import create_or_reattach
from airflow_provider_xai_batch.sources import require_one_input
from airflow_provider_xai_batch.task_hook import task_hook

__all__ = [
    "XAIAddBatchRequestsOperator",
    "XAICancelBatchOperator",
    "XAICreateBatchOperator",
]

# Names that moved, and their one home now.
_MOVED = {
    "XAIBatchOperator": "airflow_provider_xai_batch.operators.one_task",
}


def __getattr__(name: str) -> Any:
    """``XAIBatchOperator`` from its earlier home, with a deprecation warning naming the new one."""
    home = _MOVED.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from airflow.exceptions import AirflowProviderDeprecationWarning

    warnings.warn(
        f"import {name} from {home}; {__name__}.{name} is deprecated",
        AirflowProviderDeprecationWarning,
        stacklevel=2,
    )
    import importlib

    return getattr(importlib.import_module(home), name)


class XAICreateBatchOperator(BaseOperator):
    """Create an inline batch, or a file batch from an uploaded file; returns its id (pushed to XCom).

    A retry of the same task instance re-attaches to the batch its earlier try created, as long as
    that batch is usable (not cancelled, failed or expired), instead of creating another:

    - The batch is named ``name`` plus a short suffix derived from the DAG id, task id, run id and
      map index, e.g. ``nightly-eval-3f9a2c1b7d``: the same for every try of one task instance.
    - Airflow >= 3.3: the batch id is kept in the task state store, so a retry finds it directly.
      If the worker died between creating the batch and storing its id, the retry finds the batch
      by its name.
    - Airflow 3.0 - 3.2 (no task state store): a retry finds the batch by its name.

    Re-running the task instance later (clearing it) re-attaches the same way; give the batch
    another ``name`` (or cancel the old batch) to start afresh.

    Give it the input the add task(s) will send (``requests`` or ``source``, the same values) and
    it validates that input *before* creating the batch: a bad line fails this task with the file
    and line (or list index), and no batch is left behind on the account. The add task validates
    again before sending (the input is read twice). For a fan-in, give it every shard (e.g. the
    list the mapped add tasks expand over): one bad shard then stops the run before any batch
    exists, rather than failing one add task beside others that fill the batch.

    :param name: the batch name (templated); a per-task-instance suffix is appended.
    :param input_file_id: an uploaded file's id (templated; e.g. ``XAIUploadFileOperator``'s
        output): creates a file batch from it, sealed to further adds. ``None``: an inline batch.
    :param requests: the requests the batch will be filled with, to validate first (templated;
        an ``XComArg`` works). Not sent by this task.
    :param source: URI(s) of the JSONL files the batch will be filled with, globs allowed, to
        validate first (templated). Not sent by this task.
    :param source_conn_id: the connection to read ``source`` with (templated).
    :param xai_conn_id: the ``xai`` connection.

    >>> create = XAICreateBatchOperator(  # doctest: +SKIP
    ...     task_id="create", name="nightly-eval-{{ (dag_run.logical_date or dag_run.run_after) | ds }}",
    ...     source="s3://prompts/{{ (dag_run.logical_date or dag_run.run_after) | ds }}/*.jsonl",
    ...     source_conn_id="aws_default")
    """

    template_fields: Sequence[str] = ("name", "input_file_id", "requests", "source", "source_conn_id")
    ui_color = "#d9e3f0"
    operator_extra_links = (XAIBatchLink(),)

    def __init__(
        self,
        *,
        name: str,
        input_file_id: str | None = None,
        requests: Any = None,
        source: Any = None,
        source_conn_id: str | None = None,
        xai_conn_id: str = XAIBatchHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if requests is not None and source is not None:
            raise ValueError(
                f"{type(self).__name__}: give at most one of 'requests' and 'source' to validate"
            )
        if input_file_id is not None and (requests is not None or source is not None):
            raise ValueError(
                f"{type(self).__name__}: a file batch's input is validated when it is uploaded; "
                "give 'requests'/'source' only for an inline batch"
            )
        self.name = name
        self.input_file_id = input_file_id
        self.requests = requests
        self.source = source
        self.source_conn_id = source_conn_id
        self.xai_conn_id = xai_conn_id

    def execute(self, context: Context) -> str:
        with task_hook(self.xai_conn_id) as hook:
            if self.requests is not None or self.source is not None:
                # Bad input must fail here, while no batch exists yet.
                validate_task_input(hook, self, context)
            batch = create_or_reattach(
                hook, self.name, context, input_file_id=self.input_file_id or None, log=self.log
            )
        XAIBatchLink.persist(context, batch.batch_id, self.xai_conn_id)
        return batch.batch_id


class XAIAddBatchRequestsOperator(XAIBatchLineageMixin, BaseOperator):
    """Add requests to an inline batch, from an XCom list or from JSONL files in object storage.

    Give exactly one of:

    - ``requests``: a list of request objects, typically the XCom of an upstream task (pass the
      ``XComArg`` itself, e.g. ``requests=make_requests()``).
    - ``source``: a URI or a list of URIs of JSONL files, any scheme ``ObjectStoragePath`` reads
      (``s3://``, ``gs://``, ``file://``, a local path ...), globs allowed (``*``, ``**``, ``?``),
      gzip-compressed ``.jsonl.gz`` too; ``source_conn_id`` names the storage connection.

    Each request may be in any accepted shape (native, JSONL/OpenAI style with ``url``, or short
    ``{"custom_id", "body"}`` for a chat completion). The whole input is validated before the first
    add call: one bad request (bad JSON, unknown url, no body, an id reused for other content,
    too large ...) fails the task with its file and line (or list index) and nothing is added.
    The input is then streamed to the service; memory does not grow with it.

    A retry adds nothing twice and misses nothing: requests without an id get one derived from
    their file URI and line (or task id, map index and list index), so every try sends the same
    ids, and the service accepts an identical re-add as a no-op. The retry simply sends everything
    again.

    Returns (XCom) ``{"batch_id": ..., "added": n}``, ``n`` counting identical repeats once.

    An input item's top-level ``"metadata"`` object is never sent to xAI. To get it back on the
    result rows, give ``metadata_path`` (a folder URI) here and to ``XAIBatchResultsOperator``:
    this task writes its requests' ids, kinds and metadata under ``<metadata_path>/<batch_id>/``
    (one set of files per task and map index, the same again on a retry), and the results task
    reads them from there.

    :param batch_id: the batch to add to (templated).
    :param requests: a list of request objects (templated; an ``XComArg`` works).
    :param source: a URI or list of URIs of JSONL files, globs allowed (templated).
    :param source_conn_id: the connection to read ``source`` with (templated).
    :param metadata_path: folder URI for the metadata sidecar (templated); ``None`` writes none.
    :param metadata_conn_id: the connection to write ``metadata_path`` with (templated).
    :param xai_conn_id: the ``xai`` connection.

    >>> add = XAIAddBatchRequestsOperator(  # doctest: +SKIP
    ...     task_id="add", batch_id=create.output, source="s3://prompts/{{ (dag_run.logical_date or dag_run.run_after) | ds }}/*.jsonl.gz",
    ...     source_conn_id="aws_default")
    """

    template_fields: Sequence[str] = (
        "batch_id",
        "requests",
        "source",
        "source_conn_id",
        "metadata_path",
        "metadata_conn_id",
    )
    ui_color = "#d9e3f0"
    operator_extra_links = (XAIBatchLink(),)

    def __init__(
        self,
        *,
        batch_id: str,
        requests: Any = None,
        source: Any = None,
        source_conn_id: str | None = None,
        xai_conn_id: str = XAIBatchHook.default_conn_name,
        metadata_path: Any = None,
        metadata_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        require_one_input(requests, source, type(self).__name__)
        self.metadata_path = metadata_path
        self.metadata_conn_id = metadata_conn_id
        self.batch_id = batch_id
        self.requests = requests
        self.source = source
        self.source_conn_id = source_conn_id
        self.xai_conn_id = xai_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        XAIBatchLink.persist(context, self.batch_id, self.xai_conn_id)
        with task_hook(self.xai_conn_id) as hook:
            validated = validate_task_input(hook, self, context)
            if self.metadata_path is not None:  # before sending: every request sent has its entry
                write_batch_sidecar(
                    validated.resolved,
                    self.metadata_path,
                    self.metadata_conn_id,
                    self.batch_id,
                    context,
                    self.log,
                )
            report = send_input(hook, self.batch_id, validated, log=self.log)
        return {"batch_id": self.batch_id, "added": report.sent}


class XAICancelBatchOperator(BaseOperator):
    """Cancel a batch; returns the batch as a JSON dict (pushed to XCom), with its derived ``status``.

    Requests already finished keep their results; cancelling an already cancelled or finished
    batch is harmless, so a retry is safe.

    :param batch_id: the batch to cancel (templated).
    :param xai_conn_id: the ``xai`` connection.

    >>> cancel = XAICancelBatchOperator(task_id="cancel", batch_id=create.output)  # doctest: +SKIP
    """

    template_fields: Sequence[str] = ("batch_id",)
    ui_color = "#f0d9d9"

    def __init__(
        self, *, batch_id: str, xai_conn_id: str = XAIBatchHook.default_conn_name, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.batch_id = batch_id
        self.xai_conn_id = xai_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        with task_hook(self.xai_conn_id) as hook:
            batch = hook.cancel_batch(self.batch_id)
        self.log.info("cancelled batch %s (now %s)", batch.batch_id, batch.status)
        return batch.to_xcom()
