"""The keywords both exports take, declared once, and what they set up the same way from them.

:func:`~airflow_provider_xai_batch.results.export.export_results` (one batch) and
:func:`~airflow_provider_xai_batch.results.rounds.export_rounds` (a batch and its resubmission
rounds) take the same :class:`ExportOptions`; :class:`ExportSetup` turns them into the destination
folder, the metadata lookup, the media policy and the staged files, with one set of defaults.

>>> options: ExportOptions = {"output_format": "parquet", "media": "urls"}
>>> ExportSetup.check(options, "export_results")["media"]
'urls'
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypedDict

from airflow_provider_xai_batch.logs import LogLike
from airflow_provider_xai_batch.results.media import export_media_policy
from airflow_provider_xai_batch.results.media.step import MediaStep, finish_media
from airflow_provider_xai_batch.results.media.tally import MediaTally
from airflow_provider_xai_batch.results.metadata import MetadataEntry, MetadataLookup
from airflow_provider_xai_batch.results.result_files import ResultFiles
from airflow_provider_xai_batch.results.staging import OutputFolder, resolve_output_folder
from airflow_provider_xai_batch.results.table import require_output_format

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_xai_batch.client import XAIBatchClient


class ExportOptions(TypedDict, total=False):
    """The keywords of both exports; every one is optional (defaults in brackets).

    - ``output_conn_id`` [None]: the Airflow connection to reach ``output_path`` with.
    - ``log`` [the export module's logger]: receives progress, warnings and the summary line.
    - ``output_format`` ["jsonl"]: ``"jsonl"`` or ``"parquet"`` (needs the ``[parquet]`` extra).
    - ``metadata`` [None]: the input's sidecar entries sorted by request id
      (:func:`~.metadata.read_sidecar`), to put each item's ``"metadata"`` back on its row.
    - ``media`` ["download"]: store images and videos under ``media/``, or ``"urls"`` to keep
      the rows as xAI sent them.
    - ``allow_media_hosts`` [()]: hosts to fetch media from beyond xAI's own.
    - ``media_allow_private_addresses`` [False]: let media hosts resolve to private addresses.
    - ``media_max_bytes`` [None: the policy's default]: the largest media file to store.
    - ``media_concurrency`` [4]: media files fetched at once.
    - ``allow_media_failures`` [None: as ``allow_partial``]: finish without failing when some
      media could not be stored.

    >>> options: ExportOptions = {"output_conn_id": "aws", "media": "urls"}
    """

    output_conn_id: str | None
    log: LogLike | None
    output_format: str
    metadata: Iterator[MetadataEntry] | None
    media: str
    allow_media_hosts: Iterable[str]
    media_allow_private_addresses: bool
    media_max_bytes: int | None
    media_concurrency: int
    allow_media_failures: bool | None


class ExportSetup:
    """What an export sets up from its :class:`ExportOptions`, each default applied here only.

    Refuses an unknown format, Parquet without pyarrow and an unknown media mode before any work.

    >>> setup = ExportSetup(client, "/data/out", {"media": "urls"}, caller="export_results", default_log=log)  # doctest: +SKIP
    >>> with setup.files() as (files, step):  # doctest: +SKIP
    ...     files.write_page(page)
    """

    def __init__(
        self,
        client: XAIBatchClient,
        output_path: ObjectStoragePath | str,
        options: Mapping[str, Any],
        *,
        caller: str,
        default_log: LogLike,
        allow_partial: bool = False,
    ) -> None:
        given = self.check(options, caller)
        self.log: LogLike = given.get("log") or default_log
        self.output_format: str = given.get("output_format", "jsonl")
        require_output_format(self.output_format)
        self.media: str = given.get("media", "download")
        self.policy = export_media_policy(
            client.base_url,
            self.media,
            given.get("allow_media_hosts", ()),
            given.get("media_allow_private_addresses", False),
            given.get("media_max_bytes"),
        )
        self.folder = OutputFolder(resolve_output_folder(output_path, given.get("output_conn_id")))
        metadata = given.get("metadata")
        self.lookup = MetadataLookup(metadata) if metadata is not None else None
        self.media_concurrency: int = given.get("media_concurrency", 4)
        failures = given.get("allow_media_failures")
        self.allow_media_failures: bool = allow_partial if failures is None else failures

    @staticmethod
    def check(options: Mapping[str, Any], caller: str) -> Mapping[str, Any]:
        """``options`` as given; a misspelt keyword is refused as an explicit parameter list would.

        >>> ExportSetup.check({"output_fromat": "parquet"}, "export_results")
        Traceback (most recent call last):
        ...
        TypeError: export_results() got an unexpected keyword argument 'output_fromat'
        """
        unknown = sorted(set(options) - ExportOptions.__optional_keys__)
        if unknown:
            raise TypeError(f"{caller}() got an unexpected keyword argument {unknown[0]!r}")
        return options

    @property
    def download(self) -> bool:
        """Whether images and videos are stored (``media="download"``)."""
        return self.media == "download"

    @contextlib.contextmanager
    def files(self) -> Iterator[tuple[ResultFiles, MediaStep]]:
        """The staged data files and the media step of the export, released together."""
        with (
            ResultFiles(self.folder, self.log, output_format=self.output_format) as files,
            MediaStep(self.folder, self.policy, self.log, concurrency=self.media_concurrency) as step,
        ):
            yield files, step

    def finish_media(self, tally: MediaTally) -> None:
        """Fail the export for media that could not be stored, unless that is allowed (after all is written)."""
        finish_media(tally, allowed=self.allow_media_failures, log=self.log, where=self.folder.uri("media"))
