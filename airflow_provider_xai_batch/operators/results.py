"""The operator that writes a finished batch's results to object storage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Asset, BaseOperator, Context, ObjectStoragePath

from airflow_provider_xai_batch.hooks.xai import XAIBatchHook
from airflow_provider_xai_batch.lineage import XAIBatchLineageMixin
from airflow_provider_xai_batch.links import XAIBatchLink
from airflow_provider_xai_batch.operators._export import batch_metadata_folder
from airflow_provider_xai_batch.results.export import export_results
from airflow_provider_xai_batch.results.manifest import MANIFEST_FILE, data_file_names
from airflow_provider_xai_batch.results.media import check_media_mode, media_export_kwargs
from airflow_provider_xai_batch.results.metadata import read_sidecar
from airflow_provider_xai_batch.results.staging import resolve_output_folder, uri_of
from airflow_provider_xai_batch.results.table import require_output_format
from airflow_provider_xai_batch.task_hook import task_hook


class XAIBatchResultsOperator(XAIBatchLineageMixin, BaseOperator):
    """Write every result of a batch under the folder ``output_path``; returns the manifest (XCom).

    The folder (any ``ObjectStoragePath`` URI: ``s3://``, ``gs://``, ``file://``, or a local path)
    receives ``succeeded.jsonl``, ``failed.jsonl`` (cancelled requests included; or the
    ``.parquet`` pair with ``output_format="parquet"``) and, last,
    ``manifest.json`` with the counts, the cost and the file URIs. Results are streamed page by page,
    every file appears under its final name only when complete, and a re-run rewrites the same
    content. See ``docs/results.md`` for the format.

    A batch still running fails the task (wait for it with ``XAIBatchSensor`` first) unless
    ``allow_partial`` is set: then the results so far are written and the manifest says
    ``"partial": true``.

    To let other DAGs run when new results land, declare the folder as an Airflow Asset, either with
    ``asset_uri`` or with ``outlets=[Asset(...)]``. Each asset event carries the batch id, the counts
    and the manifest URI in its ``extra``. Outlets are fixed when the DAG is parsed, so point the
    asset at a stable URI (e.g. the parent of per-run folders) when ``output_path`` is templated.

    :param batch_id: the batch to export (templated).
    :param output_path: the destination folder URI (templated).
    :param output_conn_id: the Airflow connection to reach ``output_path`` (templated).
    :param xai_conn_id: the ``xai`` connection.
    :param allow_partial: export a batch that is still processing instead of failing.
    :param asset_uri: declare an Asset with this URI as an outlet of the task.
    :param page_size: results fetched per call (at most 1000).
    :param media: ``"download"`` (default) stores every image and video of the results under
        ``<output_path>/media/`` and points each row at its files; ``"urls"`` keeps xAI's URLs,
        which expire one hour after generation. Media that cannot be stored fail the task (after
        everything else is written) unless ``allow_partial`` is set. See ``docs/results.md``.
    :param allow_media_hosts: hosts to fetch media from beyond xAI's (``imgen.x.ai``,
        ``vidgen.x.ai``); the connection extra ``media_hosts`` adds to them too.
    :param output_format: ``"jsonl"`` (default) or ``"parquet"`` (``succeeded.parquet`` and
        ``failed.parquet``; needs the ``[parquet]`` extra).
    :param metadata_path: the folder the add tasks wrote the metadata sidecar under (their
        ``metadata_path``, templated): each row gains its input item's ``"metadata"`` and a failed
        row its ``"kind"``. ``None``: rows as xAI returned them.
    :param metadata_conn_id: the connection to read ``metadata_path`` with (templated).

    >>> export = XAIBatchResultsOperator(  # doctest: +SKIP
    ...     task_id="export",
    ...     batch_id="{{ ti.xcom_pull(task_ids='create') }}",
    ...     output_path="s3://my-bucket/evals/{{ dag.dag_id }}/{{ run_id }}/",
    ...     output_conn_id="aws_default",
    ...     asset_uri="s3://my-bucket/evals",
    ... )
    """

    template_fields: Sequence[str] = (
        "batch_id",
        "output_path",
        "output_conn_id",
        "metadata_path",
        "metadata_conn_id",
    )
    ui_color = "#d9e3f0"
    operator_extra_links = (XAIBatchLink(),)

    def __init__(
        self,
        *,
        batch_id: str,
        output_path: str | ObjectStoragePath,
        output_conn_id: str | None = None,
        xai_conn_id: str = XAIBatchHook.default_conn_name,
        allow_partial: bool = False,
        asset_uri: str | None = None,
        page_size: int = 1000,
        media: str = "download",
        allow_media_hosts: Sequence[str] | None = None,
        output_format: str = "jsonl",
        metadata_path: Any = None,
        metadata_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        data_file_names(output_format)  # an unknown format fails when the DAG is parsed
        if asset_uri is not None:
            outlets = kwargs.pop("outlets", None)
            if outlets is None:
                outlets = []
            elif not isinstance(outlets, (list, tuple)):
                outlets = [outlets]
            kwargs["outlets"] = [*outlets, Asset(asset_uri)]
        super().__init__(**kwargs)
        self.batch_id = batch_id
        self.output_path = output_path
        self.output_conn_id = output_conn_id
        self.xai_conn_id = xai_conn_id
        self.allow_partial = allow_partial
        self.asset_uri = asset_uri
        self.page_size = page_size
        self.media = check_media_mode(media)
        self.allow_media_hosts = tuple(allow_media_hosts or ())
        self.output_format = output_format
        self.metadata_path = metadata_path
        self.metadata_conn_id = metadata_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        XAIBatchLink.persist(context, self.batch_id, self.xai_conn_id)
        require_output_format(self.output_format)
        metadata = None
        if self.metadata_path is not None:
            folder = batch_metadata_folder(self.metadata_path, self.metadata_conn_id, self.batch_id)
            metadata = read_sidecar(folder, self.log)
        with task_hook(self.xai_conn_id) as hook:
            manifest = export_results(
                hook.get_conn(),
                self.batch_id,
                self.output_path,
                output_conn_id=self.output_conn_id,
                allow_partial=self.allow_partial,
                page_size=self.page_size,
                log=self.log,
                output_format=self.output_format,
                metadata=metadata,
                **media_export_kwargs(
                    hook, self.xai_conn_id, media=self.media, allow_media_hosts=self.allow_media_hosts
                ),
            )
        self._describe_asset_events(context, manifest)
        return manifest

    def _describe_asset_events(self, context: Context, manifest: dict[str, Any]) -> None:
        # Downstream DAGs scheduled on the asset find the export through the event, not a guess.
        assets = [outlet for outlet in self.outlets if isinstance(outlet, Asset)]
        if not assets:
            return
        folder = resolve_output_folder(self.output_path, self.output_conn_id)
        extra = {
            "batch_id": manifest["batch_id"],
            "manifest": uri_of(folder / MANIFEST_FILE),
            "total": manifest["total"],
            "succeeded": manifest["succeeded"],
            "failed": manifest["failed"],
            "cancelled": manifest["cancelled"],
            "partial": manifest["partial"],
        }
        events = context["outlet_events"]
        for asset in assets:
            events[asset].extra.update(extra)
