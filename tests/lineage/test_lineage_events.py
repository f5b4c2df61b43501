"""OpenLineage events of real ``dag.test()`` runs, as the OpenLineage provider emits them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.constants import TEST_API_KEY
from support.dags import run_dag_file

pytest.importorskip("airflow.providers.openlineage", reason="the OpenLineage provider is not installed")

Events = Callable[[], list[dict[str, Any]]]

HEADER = """
import pendulum
from airflow.sdk import DAG
from airflow_provider_xai_batch.operators.batch import XAIAddBatchRequestsOperator, XAICreateBatchOperator
from airflow_provider_xai_batch.operators.one_task import XAIBatchOperator
from airflow_provider_xai_batch.operators.results import XAIBatchResultsOperator
"""

STEPS_DAG = (
    HEADER
    + """
with DAG("lineage_steps", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    create = XAICreateBatchOperator(task_id="create", name="lineage")
    add = XAIAddBatchRequestsOperator(task_id="add", batch_id=create.output, source={source!r})
    export = XAIBatchResultsOperator(task_id="export", batch_id=create.output, output_path={output!r})
    add >> export
"""
)

ONE_TASK_DAG = (
    HEADER
    + """
with DAG("lineage_one_task", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    XAIBatchOperator(
        task_id="run_batch", name="lineage", source={source!r}, output_path={output!r},
        deferrable=True, poll_interval=1,
    )
"""
)


def write_inputs(folder: Path) -> list[Path]:
    """Two JSONL files, five requests, one of which fails in the emulator."""
    folder.mkdir(parents=True)
    prompts = {"part-1.jsonl": ["one", "two", "three [[fail]]"], "part-2.jsonl": ["four", "five"]}
    paths = []
    for name, contents in prompts.items():
        rows = [
            {
                "custom_id": f"{name}-{i}",
                "body": {"model": "grok-4.3", "messages": [{"role": "user", "content": c}]},
            }
            for i, c in enumerate(contents)
        ]
        path = folder / name
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        paths.append(path)
    return paths


def task_event(events: list[dict[str, Any]], job: str, event_type: str) -> dict[str, Any]:
    (found,) = [e for e in events if e["job"]["name"] == job and e["eventType"] == event_type]
    return found


def names(datasets: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in datasets]


def row_counts(event: dict[str, Any]) -> dict[str, int | None]:
    return {
        Path(d["name"]).name: d.get("outputFacets", {}).get("outputStatistics", {}).get("rowCount")
        for d in event["outputs"]
    }


def test_the_add_and_results_steps_report_their_files_and_the_batch(
    dags_folder: Path, xai_connection: str, emulator: Any, tmp_path: Path, lineage_events: Events
) -> None:
    inputs = write_inputs(tmp_path / "in")
    output = tmp_path / "out"
    run = run_dag_file(
        STEPS_DAG.format(source=f"{tmp_path}/in/*.jsonl", output=str(output)), "lineage_steps", dags_folder
    )
    assert run.state == "success"
    events = lineage_events()
    manifest = json.loads((output / "manifest.json").read_text())
    batch_id = manifest["batch_id"]

    add_start = task_event(events, "lineage_steps.add", "START")
    add_done = task_event(events, "lineage_steps.add", "COMPLETE")
    expected_inputs = [("file", str(path)) for path in inputs]
    assert names(add_start["inputs"]) == names(add_done["inputs"]) == expected_inputs
    assert add_done["outputs"] == []
    assert add_done["run"]["facets"]["externalQuery"]["externalQueryId"] == batch_id
    assert add_done["run"]["facets"]["xai_batch"]["total"] == 5

    export_done = task_event(events, "lineage_steps.export", "COMPLETE")
    assert export_done["inputs"] == []
    assert names(export_done["outputs"]) == [
        ("file", str(output / "succeeded.jsonl")),
        ("file", str(output / "failed.jsonl")),
        ("file", str(output / "manifest.json")),
    ]
    assert row_counts(export_done) == {"succeeded.jsonl": 4, "failed.jsonl": 1, "manifest.json": None}
    facet = export_done["run"]["facets"]["xai_batch"]
    assert (facet["batchId"], facet["total"], facet["succeeded"], facet["failed"]) == (batch_id, 5, 4, 1)
    assert facet["costUsdTicks"] == manifest["cost_usd_ticks"] > 0
    assert facet["costUsd"] == pytest.approx(manifest["cost_usd_ticks"] / 1e10)
    # The create step has no lineage of its own beyond what Airflow reports for every task.
    assert "xai_batch" not in task_event(events, "lineage_steps.create", "COMPLETE")["run"]["facets"]


def test_the_one_task_operator_reports_inputs_outputs_and_figures_after_deferring(
    dags_folder: Path, xai_connection: str, emulator: Any, tmp_path: Path, lineage_events: Events
) -> None:
    inputs = write_inputs(tmp_path / "in")
    output = tmp_path / "out"
    source = [str(path) for path in inputs]
    run = run_dag_file(
        ONE_TASK_DAG.format(source=source, output=str(output)), "lineage_one_task", dags_folder
    )
    assert run.state == "success"
    events = lineage_events()
    manifest = json.loads((output / "manifest.json").read_text())

    done = task_event(events, "lineage_one_task.run_batch", "COMPLETE")
    assert names(done["inputs"]) == [("file", str(path)) for path in inputs]
    assert row_counts(done) == {"succeeded.jsonl": 4, "failed.jsonl": 1, "manifest.json": None}
    facet = done["run"]["facets"]["xai_batch"]
    assert (
        facet["batchId"] == manifest["batch_id"] == done["run"]["facets"]["externalQuery"]["externalQueryId"]
    )
    assert (facet["succeeded"], facet["failed"], facet["costUsdTicks"]) == (4, 1, manifest["cost_usd_ticks"])


def test_a_failed_export_still_names_its_batch_and_the_files_it_was_to_write(
    dags_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lineage_events: Events
) -> None:
    from airflow_provider_xai_batch.emulator import EmulatorServer

    write_inputs(tmp_path / "in")
    output = tmp_path / "out"
    # Too slow to finish: the export refuses a batch still processing, and the task fails.
    with EmulatorServer(api_key=TEST_API_KEY, processing_rate=0.001) as slow:
        monkeypatch.setenv(
            "AIRFLOW_CONN_XAI_DEFAULT",
            json.dumps({"conn_type": "xai", "password": TEST_API_KEY, "host": slow.url}),
        )
        source = STEPS_DAG.format(source=f"{tmp_path}/in/*.jsonl", output=str(output))
        run = run_dag_file(source.replace("lineage_steps", "lineage_failed"), "lineage_failed", dags_folder)
        (batch,) = slow.service.list_batches(limit=10)["batches"]
    assert run.state == "failed"
    failed = task_event(lineage_events(), "lineage_failed.export", "FAIL")
    assert [Path(name).name for _, name in names(failed["outputs"])] == [
        "succeeded.jsonl",
        "failed.jsonl",
        "manifest.json",
    ]
    assert failed["run"]["facets"]["xai_batch"]["batchId"] == batch["batch_id"]
    assert not (output / "manifest.json").exists()
