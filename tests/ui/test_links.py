"""The *xAI batch* button: recorded per task instance as soon as the batch id is known.

Run with ``dag.test()`` against the emulator; what the UI and the REST API read is the XCom each
task instance recorded under the link's key, and the batches page reads the same records to tell
which task made a batch and where its results went.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.dags import task_states

from airflow_provider_xai_batch.links import LINK_XCOM_KEY, XAIBatchLink, batch_page_path, file_page_path
from airflow_provider_xai_batch.plugins import records

DAG_SOURCE = """
from contextlib import closing

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_xai_batch.hooks.xai import XAIBatchHook
from airflow_provider_xai_batch.operators.batch import XAIAddBatchRequestsOperator, XAICreateBatchOperator
from airflow_provider_xai_batch.operators.results import XAIBatchResultsOperator
from airflow_provider_xai_batch.sensors.batch import XAIBatchSensor

CHAT = {{"model": "grok-4.3", "messages": [{{"role": "user", "content": "hi"}}]}}

with DAG("links", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    create = XAICreateBatchOperator(task_id="create", name="linked")
    add = XAIAddBatchRequestsOperator(
        task_id="add", batch_id=create.output, requests=[{{"custom_id": "q1", "body": CHAT}}]
    )
    wait = XAIBatchSensor(task_id="wait", batch_id=create.output, poke_interval=0.1, timeout=60, deferrable=True)
    export = XAIBatchResultsOperator(task_id="export", batch_id=create.output, output_path={output!r})
    add >> wait >> export

    @task
    def two_batches():
        with closing(XAIBatchHook()) as hook:
            ids = [hook.create_batch(f"mapped-{{n}}").batch_id for n in range(2)]
            for batch_id in ids:
                hook.add_requests(batch_id, [{{"custom_id": "q1", "body": CHAT}}])
        return ids

    XAIBatchSensor.partial(task_id="wait_each", poke_interval=0.1, timeout=60).expand(batch_id=two_batches())
"""


def recorded_links(run: Any) -> dict[tuple[str, int], Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(XComModel.task_id, XComModel.map_index, XComModel.value).where(
                XComModel.key == LINK_XCOM_KEY, XComModel.dag_id == run.dag_id, XComModel.run_id == run.run_id
            )
        ).all()
    return {(task_id, map_index): records.decoded(value) for task_id, map_index, value in rows}


def test_every_batch_task_links_to_its_batch_and_mapped_tasks_to_their_own(
    xai_conn: Callable[..., str], emulator: Any, run_dag: Callable[..., Any], tmp_path: Path
) -> None:
    run = run_dag(DAG_SOURCE.format(output=str(tmp_path / "results")), "links")
    assert run.state == "success", task_states(run)

    by_name = {
        batch["name"]: batch["batch_id"] for batch in emulator.service.list_batches(limit=100)["batches"]
    }
    [linked] = [batch_id for name, batch_id in by_name.items() if name.startswith("linked")]
    links = recorded_links(run)
    page = batch_page_path(linked, "xai_default")
    assert {key: links[key] for key in [("create", -1), ("add", -1), ("wait", -1), ("export", -1)]} == {
        ("create", -1): page,
        ("add", -1): page,
        ("wait", -1): page,
        ("export", -1): page,
    }
    assert links[("wait_each", 0)] == batch_page_path(by_name["mapped-0"], "xai_default")
    assert links[("wait_each", 1)] == batch_page_path(by_name["mapped-1"], "xai_default")
    assert ("two_batches", -1) not in links  # a plain task has no button

    # The page's view of the same records: the create task made the batch, the export wrote here.
    made = records.link_records({linked})[linked]
    assert (made.dag_id, made.run_id, made.task_id) == ("links", run.run_id, "create")
    export = records.recorded_export(linked)
    assert export is not None and export["folder"] == f"file://{tmp_path / 'results'}"
    assert export["manifest_uri"].endswith("/manifest.json") and export["succeeded"] == 1


def test_the_upload_task_links_to_the_batches_made_from_its_file(
    xai_conn: Callable[..., str], emulator: Any, run_dag: Callable[..., Any], tmp_path: Path
) -> None:
    source = tmp_path / "input.jsonl"
    source.write_text(
        '{"custom_id": "q1", "body": {"model": "grok-4.3", "messages": [{"role": "user", "content": "hi"}]}}\n'
    )
    dag = f"""
import pendulum
from airflow.sdk import DAG
from airflow_provider_xai_batch.operators.files import XAIUploadFileOperator

with DAG("upload_link", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    XAIUploadFileOperator(task_id="upload", source={str(source)!r})
"""
    run = run_dag(dag, "upload_link")
    assert run.state == "success", task_states(run)
    [file_id] = [ti.xcom_pull(task_ids="upload") for ti in run.get_task_instances()]
    assert recorded_links(run) == {("upload", -1): file_page_path(file_id, "xai_default")}


def test_the_link_is_declared_for_airflow() -> None:
    from airflow_provider_xai_batch.get_provider_info import get_provider_info

    assert get_provider_info()["extra-links"] == ["airflow_provider_xai_batch.links.XAIBatchLink"]
    assert XAIBatchLink().name == "xAI batch"
