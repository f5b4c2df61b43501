"""What Airflow's database knows about batches: which task recorded each, and the results it wrote.

Every task of this provider that makes, fills, waits for or exports a batch records the batch's
page in an XCom under :data:`~airflow_provider_xai_batch.links.LINK_XCOM_KEY` (the *xAI batch*
button). The first task that recorded a batch is the one that made it; its DAG decides who may
see and cancel the batch. A results step returns its manifest (with the batch id and the files it
wrote), which the batch's page shows.

This module reads Airflow's metadata database, so it only runs inside the API server.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_xai_batch.links import LINK_XCOM_KEY, batch_id_from_link

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# How many link records the list page reads at most: the newest ones, which cover the batches
# that can still be running (a batch expires after a few weeks).
MAX_RECORDS = 20_000


@dataclass(frozen=True)
class MadeBy:
    """The task instance that recorded a batch first."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    recorded_at: datetime | None = None

    @property
    def label(self) -> str:
        """``dag / run / task[index]``, as the page shows it.

        >>> MadeBy("nightly", "manual__1", "create", -1).label
        'nightly / manual__1 / create'
        """
        index = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id} / {self.run_id} / {self.task_id}{index}"


def decoded(value: Any) -> Any:
    """An XCom value as Python, whether the database kept it as JSON or as JSON text.

    >>> decoded('"/xai-batch/batches/b"'), decoded({"a": 1}), decoded('{"a": 1}')
    ('/xai-batch/batches/b', {'a': 1}, {'a': 1})
    """
    for _ in range(2):  # text may hold JSON text once more, depending on who wrote it
        if not isinstance(value, str) or value[:1] not in ('"', "{", "["):
            break
        try:
            value = json.loads(value)
        except ValueError:
            break
    return value


def first_recorders(rows: Iterable[tuple[str, str, str, int, Any, datetime | None]]) -> dict[str, MadeBy]:
    """Batch id -> the task that recorded it first, from ``(dag, run, task, index, value, time)`` rows.

    >>> rows = [("d", "r", "wait", -1, '"/xai-batch/batches/b1?conn_id=x"', datetime(2026, 1, 2)),
    ...         ("d", "r", "create", -1, '"/xai-batch/batches/b1?conn_id=x"', datetime(2026, 1, 1))]
    >>> first_recorders(rows)["b1"].task_id
    'create'
    """
    found: dict[str, MadeBy] = {}
    for dag_id, run_id, task_id, map_index, value, recorded_at in rows:
        link = decoded(value)
        batch_id = batch_id_from_link(link) if isinstance(link, str) else None
        if batch_id is None:
            continue
        made = MadeBy(dag_id, run_id, task_id, int(map_index), recorded_at)
        known = found.get(batch_id)
        if known is None or (
            made.recorded_at is not None
            and known.recorded_at is not None
            and made.recorded_at < known.recorded_at
        ):
            found[batch_id] = made
    return found


def export_of(batch_id: str, values: Iterable[Any]) -> dict[str, Any] | None:
    """The newest results manifest among ``values`` (XCom return values) for ``batch_id``, if any.

    >>> export_of("b1", [{"batch_id": "b1", "files": {"succeeded": "file:///out/succeeded.jsonl"}}])["folder"]
    'file:///out'
    """
    for value in values:
        manifest = decoded(value)
        if not isinstance(manifest, dict) or manifest.get("batch_id") != batch_id:
            continue
        files = manifest.get("files")
        if not isinstance(files, dict) or not files:
            continue
        first = str(next(iter(files.values())))
        folder = first.rsplit("/", 1)[0]
        return {**manifest, "folder": folder, "manifest_uri": f"{folder}/manifest.json"}
    return None


def _link_rows(session: Session) -> list[tuple[str, str, str, int, Any, datetime | None]]:
    """The newest link records as ``(dag, run, task, index, value, time)`` rows (see :data:`MAX_RECORDS`)."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    query = (
        select(
            XComModel.dag_id,
            XComModel.run_id,
            XComModel.task_id,
            XComModel.map_index,
            XComModel.value,
            XComModel.timestamp,
        )
        .where(XComModel.key == LINK_XCOM_KEY)
        .order_by(XComModel.timestamp.desc())
        .limit(MAX_RECORDS)
    )
    return [tuple(row) for row in session.execute(query)]


def link_records(batch_ids: set[str] | None = None) -> dict[str, MadeBy]:
    """Batch id -> the task that made it, from the link records in Airflow's database."""
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = _link_rows(session)
    found = first_recorders(rows)
    if batch_ids is not None:
        found = {key: made for key, made in found.items() if key in batch_ids}
    return found


def recorded_export(batch_id: str) -> dict[str, Any] | None:
    """The manifest a results step returned for ``batch_id``, if one ran."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        tasks = [
            (dag_id, run_id, task_id, map_index)
            for dag_id, run_id, task_id, map_index, value, _ in _link_rows(session)
            if isinstance(link := decoded(value), str) and batch_id_from_link(link) == batch_id
        ]
        values: list[Any] = []
        for dag_id, run_id, task_id, map_index in tasks:
            values.extend(
                session.scalars(
                    select(XComModel.value).where(
                        XComModel.key == "return_value",
                        XComModel.dag_id == dag_id,
                        XComModel.run_id == run_id,
                        XComModel.task_id == task_id,
                        XComModel.map_index == map_index,
                    )
                )
            )
    return export_of(batch_id, values)
