"""File batches from Airflow: upload a JSONL input file, then create a batch from it.

The OpenAI-style flow (upload, create, wait, results) as tasks::

    upload = XAIUploadFileOperator(task_id="upload", source="s3://prompts/{{ (dag_run.logical_date or dag_run.run_after) | ds }}/batch.jsonl.gz",
                                   source_conn_id="aws_default")
    create = XAICreateBatchOperator(task_id="create", name="nightly-{{ (dag_run.logical_date or dag_run.run_after) | ds }}", input_file_id=upload.output)
    wait = XAIBatchSensor(task_id="wait", batch_id=create.output, deferrable=True)

``XAIBatchOperator(..., input_mode="file")`` does all of it in one task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

from airflow.sdk import BaseOperator, Context

from airflow_provider_xai_batch.hooks.xai import XAIBatchHook
from airflow_provider_xai_batch.links import XAIBatchLink
from airflow_provider_xai_batch.logs import LogLike
from airflow_provider_xai_batch.operators._ingest import validate_input
from airflow_provider_xai_batch.operators._resume import name_suffix, task_instance_key
from airflow_provider_xai_batch.sources import ResolvedInput, xcom_source_label
from airflow_provider_xai_batch.task_hook import task_hook
from airflow_provider_xai_batch.uploads import (
    MAX_FILE_BYTES,
    MAX_FILE_REQUESTS,
    UploadPlan,
    check_file_limits,
    plan_upload,
    upload_or_reuse,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "UploadOptions",
    "XAIUploadFileOperator",
    "plan_checked_upload",
    "prepare_upload",
    "upload_input",
    "upload_validated",
]


def plan_checked_upload(
    context: Mapping[str, Any] | None,
    resolved: ResolvedInput,
    *,
    max_file_requests: int = MAX_FILE_REQUESTS,
    max_file_bytes: int = MAX_FILE_BYTES,
) -> UploadPlan:
    """Measure the file an already validated input makes, named for this task instance; check xAI's file limits."""
    suffix = name_suffix(*task_instance_key(context)) if context and "ti" in context else None
    plan = plan_upload(resolved, name_suffix=suffix)
    check_file_limits(plan, max_requests=max_file_requests, max_bytes=max_file_bytes)
    return plan


class UploadOptions(TypedDict, total=False):
    """The keywords of :func:`prepare_upload` and :func:`upload_input`; every one is optional.

    ``requests`` or ``source`` (one of them) is the input, ``source_conn_id`` the connection to read
    ``source`` with; ``max_file_requests`` and ``max_file_bytes`` are xAI's file limits (default
    ``MAX_FILE_REQUESTS`` and ``MAX_FILE_BYTES``); ``log`` receives the per-source counts.
    """

    requests: Any
    source: Any
    source_conn_id: str | None
    max_file_requests: int
    max_file_bytes: int
    log: LogLike | None


def _checked_options(options: Mapping[str, Any], caller: str) -> Mapping[str, Any]:
    # Keyword arguments arrive as a dict: refuse a misspelt one as an explicit parameter list would.
    unknown = sorted(set(options) - UploadOptions.__optional_keys__)
    if unknown:
        raise TypeError(f"{caller}() got an unexpected keyword argument {unknown[0]!r}")
    return options


def prepare_upload(
    hook: XAIBatchHook, context: Mapping[str, Any] | None, **options: Unpack[UploadOptions]
) -> UploadPlan:
    """Validate the input like the add operator does, then measure the file and check xAI's file limits.

    Takes the keywords of :class:`UploadOptions`. Raises
    :class:`~airflow_provider_xai_batch.client.errors.XAIInputError` naming the file and line
    (or list index) of the first bad request, or saying which file limit the input exceeds.

    >>> plan = prepare_upload(hook, context, source="s3://prompts/batch.jsonl")  # doctest: +SKIP
    """
    given = _checked_options(options, "prepare_upload")
    validated = validate_input(
        hook,
        requests=given.get("requests"),
        source=given.get("source"),
        source_conn_id=given.get("source_conn_id"),
        source_label=xcom_source_label(context),
        log=given.get("log"),
    )
    return plan_checked_upload(
        context,
        validated.resolved,
        max_file_requests=given.get("max_file_requests", MAX_FILE_REQUESTS),
        max_file_bytes=given.get("max_file_bytes", MAX_FILE_BYTES),
    )


def upload_validated(
    hook: XAIBatchHook,
    context: Mapping[str, Any] | None,
    resolved: ResolvedInput,
    *,
    max_file_requests: int = MAX_FILE_REQUESTS,
    max_file_bytes: int = MAX_FILE_BYTES,
    log: LogLike | None = None,
) -> str:
    """Upload an input its caller has validated already (or re-use this task's upload); return the file id.

    >>> validated = validate_input(hook, source=..., source_label=..., log=log)  # doctest: +SKIP
    >>> file_id = upload_validated(hook, context, validated.resolved, log=log)  # doctest: +SKIP
    """
    plan = plan_checked_upload(
        context, resolved, max_file_requests=max_file_requests, max_file_bytes=max_file_bytes
    )
    return upload_or_reuse(hook, plan, context, log=log)


def upload_input(
    hook: XAIBatchHook, context: Mapping[str, Any] | None, **options: Unpack[UploadOptions]
) -> str:
    """Validate, then upload the input as one batch file (or re-use this task's earlier upload); return its id.

    Takes the keywords of :class:`UploadOptions`, as :func:`prepare_upload` does.

    >>> file_id = upload_input(hook, context, source="s3://prompts/batch.jsonl",  # doctest: +SKIP
    ...                        source_conn_id="aws_default")
    """
    _checked_options(options, "upload_input")
    plan = prepare_upload(hook, context, **options)
    return upload_or_reuse(hook, plan, context, log=options.get("log"))


class XAIUploadFileOperator(BaseOperator):
    """Upload a JSONL input file for a file batch; returns the file id (pushed to XCom).

    ``source`` is one JSONL file (or ``.jsonl.gz``) in object storage, any scheme
    ``ObjectStoragePath`` reads (a list of files or a glob is uploaded as one file). Before anything
    is sent, every line is checked exactly as
    :class:`~airflow_provider_xai_batch.operators.batch.XAIAddBatchRequestsOperator` checks it, with
    the same file:line errors, and the file is refused with a clear message past xAI's per-file
    limits (50,000 requests, 200 MB by default), so xAI never has to reject it.

    What is uploaded is the input rewritten as xAI's file format, one line per distinct request
    (``{"custom_id", "method": "POST", "url", "body"}``), streamed while it is read: gzip is
    decompressed, any accepted request shape is converted, and requests without an id get the
    same deterministic id (from file URI and line) as when they are added to an inline batch.

    A retry re-uses the file its earlier try uploaded: the file is named after the task instance
    and a digest of its content, and its id is kept in the task state store (Airflow >= 3.3); a
    retry without a stored id looks the name up among the team's files. A changed input has another
    name and is uploaded afresh.

    :param source: URI (or list of URIs, globs allowed) of the JSONL input (templated).
    :param source_conn_id: Connection to read ``source`` with (templated).
    :param max_file_requests: Most requests one file may hold (xAI: 50,000).
    :param max_file_bytes: Largest file xAI accepts, in bytes (xAI: 200 MB).
    :param xai_conn_id: The ``xai`` connection.

    >>> upload = XAIUploadFileOperator(  # doctest: +SKIP
    ...     task_id="upload", source="s3://prompts/{{ (dag_run.logical_date or dag_run.run_after) | ds }}/batch.jsonl.gz", source_conn_id="aws_default")
    >>> create = XAICreateBatchOperator(  # doctest: +SKIP
    ...     task_id="create", name="nightly-{{ (dag_run.logical_date or dag_run.run_after) | ds }}", input_file_id=upload.output)
    """

    template_fields: Sequence[str] = ("source", "source_conn_id")
    ui_color = "#d9e3f0"
    operator_extra_links = (XAIBatchLink(),)

    def __init__(
        self,
        *,
        source: Any,
        source_conn_id: str | None = None,
        max_file_requests: int = MAX_FILE_REQUESTS,
        max_file_bytes: int = MAX_FILE_BYTES,
        xai_conn_id: str = XAIBatchHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if source is None:
            raise ValueError(f"{type(self).__name__}: 'source' (the JSONL file to upload) is required")
        if max_file_requests <= 0 or max_file_bytes <= 0:
            raise ValueError(f"{type(self).__name__}: file limits must be positive")
        self.source = source
        self.source_conn_id = source_conn_id
        self.max_file_requests = max_file_requests
        self.max_file_bytes = max_file_bytes
        self.xai_conn_id = xai_conn_id

    def execute(self, context: Context) -> str:
        with task_hook(self.xai_conn_id) as hook:
            file_id = upload_input(
                hook,
                context,
                source=self.source,
                source_conn_id=self.source_conn_id,
                max_file_requests=self.max_file_requests,
                max_file_bytes=self.max_file_bytes,
                log=self.log,
            )
        XAIBatchLink.persist_file(context, file_id, self.xai_conn_id)
        return file_id
