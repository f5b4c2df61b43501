"""The files of one export (``succeeded.jsonl``, ``failed.jsonl``, ``manifest.json``), staged together.

Data files are staged while rows are written, the manifest last; publishing moves the data files
into place and the manifest after them, so a reader that waits for ``manifest.json`` always sees a
finished, consistent export. Leaving the block on an error drops whatever was staged.

>>> folder = OutputFolder(resolve_output_folder("/tmp/results/batch_123"))  # doctest: +SKIP
>>> with ResultFiles(folder, log) as files:  # doctest: +SKIP
...     files.succeeded.write(b'{"batch_request_id": "a"}\\n')
...     files.close_data()
...     files.publish({"batch_id": "batch_123", "total": 1})
"""

from __future__ import annotations

import json
import uuid
from types import TracebackType
from typing import Any

from airflow_provider_xai_batch.logs import LogLike
from airflow_provider_xai_batch.results.manifest import FAILED_FILE, MANIFEST_FILE, SUCCEEDED_FILE
from airflow_provider_xai_batch.results.staging import OutputFolder, StagedFile


class ResultFiles:
    """The staged data files of one export, published with their manifest last."""

    def __init__(self, folder: OutputFolder, log: LogLike) -> None:
        self.folder = folder
        folder.fs.makedirs(folder.root, exist_ok=True)
        folder.remove_stale_staging(log)
        self._token = uuid.uuid4().hex[:12]
        self._staged: list[StagedFile] = []

    def __enter__(self) -> ResultFiles:
        try:
            self.succeeded = self._stage(SUCCEEDED_FILE)
            self.failed = self._stage(FAILED_FILE)
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

    def close_data(self) -> None:
        """Finish writing the data files, so that their sizes are final for the manifest."""
        self.succeeded.close()
        self.failed.close()

    def publish(self, manifest: dict[str, Any]) -> None:
        """Stage ``manifest``, then move the data files and the manifest into place, in that order."""
        manifest_file = self._stage(MANIFEST_FILE)
        manifest_file.write((json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode())
        manifest_file.close()
        # The old manifest goes first: from here until the new one lands, no manifest vouches for
        # a mix of old and new data files.
        self.folder.remove(MANIFEST_FILE)
        self.succeeded.publish()
        self.failed.publish()
        manifest_file.publish()

    def _stage(self, name: str) -> StagedFile:
        staged = StagedFile(self.folder, name, self._token)
        self._staged.append(staged)
        return staged

    def _discard(self) -> None:
        for item in self._staged:
            item.discard()
