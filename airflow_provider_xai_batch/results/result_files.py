"""The files of one export (``succeeded.jsonl``/``.parquet``, ``failed.*``, ``manifest.json``), staged together.

Data files are staged while rows are written, the manifest last; publishing moves the data files
into place and the manifest after them, so a reader that waits for ``manifest.json`` always sees a
finished, consistent export. Leaving the block on an error drops whatever was staged.

>>> folder = OutputFolder(resolve_output_folder("/tmp/results/batch_123"))  # doctest: +SKIP
>>> with ResultFiles(folder, log, output_format="parquet") as files:  # doctest: +SKIP
...     files.write(b'{"batch_request_id":"a","kind":"chat_get_completion","response":{}}\\n', b"")
...     files.close_data()
...     files.publish({"batch_id": "batch_123", "total": 1})
"""

from __future__ import annotations

import json
import uuid
from types import TracebackType
from typing import Any, Protocol

from airflow_provider_xai_batch.logs import LogLike
from airflow_provider_xai_batch.results.manifest import MANIFEST_FILE, OUTPUT_FORMATS, data_file_names
from airflow_provider_xai_batch.results.rows import PayloadReader, ResultPage
from airflow_provider_xai_batch.results.staging import OutputFolder, StagedFile
from airflow_provider_xai_batch.results.table import ParquetSink, read_usual_responses

OTHER_FORMAT_FILES = {
    output_format: [
        name for other in OUTPUT_FORMATS if other != output_format for name in data_file_names(other)
    ]
    for output_format in OUTPUT_FORMATS
}


class _Sink(Protocol):
    def write(self, lines: bytes) -> None: ...

    def close(self) -> None: ...


class ResultFiles:
    """The staged data files of one export, published with their manifest last.

    Rows come in a page at a time, as JSONL lines or as the page :func:`~.rows.decode_page`
    decoded; ``output_format="parquet"`` turns them into table rows (:mod:`.table`) instead of
    writing them as JSONL.
    """

    def __init__(self, folder: OutputFolder, log: LogLike, *, output_format: str = "jsonl") -> None:
        self.succeeded_name, self.failed_name = data_file_names(output_format)
        self.output_format = output_format
        self.folder = folder
        folder.fs.makedirs(folder.root, exist_ok=True)
        folder.remove_stale_staging(log)
        self._token = uuid.uuid4().hex[:12]
        self._staged: list[StagedFile] = []
        self._tables: tuple[ParquetSink, ParquetSink] | None = None

    def __enter__(self) -> ResultFiles:
        try:
            self.succeeded = self._stage(self.succeeded_name)
            self.failed = self._stage(self.failed_name)
            if self.output_format == "parquet":
                self._tables = (ParquetSink(self.succeeded, "succeeded"), ParquetSink(self.failed, "failed"))
            self._sinks: tuple[_Sink, _Sink] = self._tables or (self.succeeded, self.failed)
        except BaseException:
            self._discard()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self._discard()

    @property
    def data_files(self) -> dict[str, StagedFile]:
        """The data files by manifest key, as ``build_manifest`` takes them."""
        return {"succeeded": self.succeeded, "failed": self.failed}

    @property
    def payload_reader(self) -> PayloadReader | None:
        """How :func:`~.rows.decode_page` should read the payloads for these files (JSONL: for costs only)."""
        return None if self._tables is None else read_usual_responses

    def write(self, succeeded_lines: bytes, failed_lines: bytes) -> None:
        """Add a page's succeeded and failed JSONL lines to the data files."""
        self._sinks[0].write(succeeded_lines)
        self._sinks[1].write(failed_lines)

    def write_page(self, page: ResultPage) -> None:
        """Add a decoded page: its lines encoded as JSONL, or straight into the tables."""
        if self._tables is None:
            self.write(page.succeeded_lines(), page.failed_lines())
        else:
            self._tables[0].write_page(page)
            self._tables[1].write_page(page)

    def close_data(self) -> None:
        """Finish writing the data files, so that their sizes are final for the manifest."""
        for sink in self._sinks:
            sink.close()

    def publish(self, manifest: dict[str, Any]) -> None:
        """Stage ``manifest``, then move the data files and the manifest into place, in that order."""
        manifest_file = self._stage(MANIFEST_FILE)
        manifest_file.write((json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode())
        manifest_file.close()
        # The old manifest goes first: from here until the new one lands, no manifest vouches for
        # a mix of old and new data files.
        self.folder.remove(MANIFEST_FILE)
        # Data files of the other format, from an earlier export here, would sit beside a manifest
        # that does not name them: a reader listing the folder must find only this export's files.
        for name in OTHER_FORMAT_FILES[self.output_format]:
            self.folder.remove(name)
        self.succeeded.publish()
        self.failed.publish()
        manifest_file.publish()

    def _stage(self, name: str) -> StagedFile:
        staged = StagedFile(self.folder, name, self._token)
        self._staged.append(staged)
        return staged

    def _discard(self) -> None:
        for table in self._tables or ():
            table.abandon()
        for item in self._staged:
            item.discard()
