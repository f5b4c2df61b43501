"""The results operator in a real DAG run (``dag.test()``) against the emulator."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.constants import TEST_API_KEY
from support.dags import run_dag_file

from airflow_provider_xai_batch.client import XAIBatchClient

DAG_SOURCE = """
import json
import pathlib

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_xai_batch.operators.results import XAIBatchResultsOperator

with DAG("results_export", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    export = XAIBatchResultsOperator(
        task_id="export",
        batch_id="{{{{ params.batch_id }}}}",
        output_path="file://{folder}/{{{{ ds }}}}",
        asset_uri="file://{folder}",
        params={{"batch_id": "{batch_id}"}},
    )

    @task
    def record(manifest):
        pathlib.Path("{record}").write_text(json.dumps(manifest))

    record(export.output)
"""


@pytest.fixture
def run_dag(dags_folder: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], Any]:
    import airflow
    import airflow.settings
    from packaging.version import Version

    # Read once at import; dag.test() on Airflow 3.3 syncs the DAG bundle from there.
    monkeypatch.setattr(airflow.settings, "DAGS_FOLDER", str(dags_folder))
    if Version(airflow.__version__) < Version("3.1"):
        # dag.test() of Airflow 3.0 does not record the DAG, so its assets stay inactive and the
        # task refuses its outlets; a deployment's DAG processor records it before any run.
        from airflow.dag_processing.bundles.manager import DagBundlesManager
        from airflow.models.dag import DAG as SchedulerDAG
        from airflow.sdk import DAG
        from airflow.serialization.serialized_objects import SerializedDAG

        real_test = DAG.test

        def recorded_then_tested(dag: Any, *args: Any, **kwargs: Any) -> Any:
            DagBundlesManager().sync_bundles_to_db()
            # Defined on a base class that Airflow types loosely.
            recorded = SerializedDAG.deserialize_dag(SerializedDAG.serialize_dag(dag))  # type: ignore[attr-defined]
            SchedulerDAG.bulk_write_to_db("dags-folder", None, [recorded])
            return real_test(dag, *args, **kwargs)

        monkeypatch.setattr(DAG, "test", recorded_then_tested)
    return lambda source, dag_id: run_dag_file(source, dag_id, dags_folder)


def test_operator_exports_and_hands_the_manifest_downstream(
    run_dag: Callable[[str, str], Any], emulator: Any, xai_connection: str, tmp_path: Path
) -> None:
    with XAIBatchClient(TEST_API_KEY, base_url=emulator.url) as client:
        batch = client.create_batch("results-operator")
        requests: list[dict[str, Any]] = [
            {
                "custom_id": f"q-{n}",
                "body": {"model": "grok-4.3", "messages": [{"role": "user", "content": f"{n}"}]},
            }
            for n in range(20)
        ]
        requests[3]["body"]["max_tokens"] = -1
        client.add_requests(batch.batch_id, requests)

    folder = tmp_path / "exports"
    record = tmp_path / "manifest-from-xcom.json"
    source = DAG_SOURCE.format(folder=folder, batch_id=batch.batch_id, record=record)
    run = run_dag(source, "results_export")

    assert run.state == "success"
    manifest = json.loads(record.read_text())
    (written,) = list(folder.glob("*/manifest.json"))  # one folder per logical date
    assert json.loads(written.read_text()) == manifest
    assert manifest["batch_id"] == batch.batch_id
    assert (manifest["total"], manifest["succeeded"], manifest["failed"]) == (20, 19, 1)
    assert manifest["files"]["failed"] == f"file://{written.parent}/failed.jsonl"

    from airflow.models.asset import AssetEvent
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        keys = [
            row.key
            for row in session.query(XComModel).filter_by(
                dag_id="results_export", task_id="export", run_id=run.run_id
            )
        ]
        events = (
            session.query(AssetEvent)
            .filter_by(source_dag_id="results_export", source_run_id=run.run_id)
            .all()
        )
        assert sorted(keys) == ["_link_XAIBatchLink", "return_value"]  # the manifest and the xAI batch button
        (event,) = events
        assert event.asset.uri == f"file://{folder}"
        assert event.extra["batch_id"] == batch.batch_id
        assert event.extra["manifest"] == f"file://{written}"
        assert (event.extra["succeeded"], event.extra["failed"], event.extra["partial"]) == (19, 1, False)
