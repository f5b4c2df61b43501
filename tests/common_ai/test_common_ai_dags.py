"""A common-ai DAG, unchanged but for ``model_id="xai:..."``, run with ``dag.test()`` against the emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.dags import run_dag_file

pytest.importorskip(
    "airflow.providers.common.ai.operators.llm_batch", reason="common-ai is not installed on this leg"
)

PROMPTS = [f"Summarise review {i}: the hotel was fine." for i in range(12)]
FAILING = 7
PROMPTS[FAILING] = "Summarise this broken review [[fail]]"

DAG_SOURCE = """
import datetime, json, pathlib
import pendulum
from airflow.sdk import DAG, task
from airflow.providers.common.ai.operators.llm_batch import LLMBatchOperator

OUT = pathlib.Path({out!r})


class RecordingLLMBatchOperator(LLMBatchOperator):
    # Records each resumption from the triggerer, which only the deferrable path goes through.
    def execute_complete(self, context, event):
        with (OUT / "resumed.jsonl").open("a") as handle:
            handle.write(json.dumps(event) + "\\n")
        return super().execute_complete(context, event)


with DAG(
    {dag_id!r},
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1),
    default_args={{"retries": {retries}, "retry_delay": datetime.timedelta(0)}},
) as dag:
    summarise = RecordingLLMBatchOperator(
        task_id="summarise",
        requests={prompts!r},
        model_id="xai:grok-4.3",
        llm_conn_id="xai_default",
        system_prompt="Answer in one sentence.",
        max_tokens=200,
        result_path={result_path!r},
        deferrable=True,
        poll_interval=30,
    )

    @task
    def keep(manifest):
        (OUT / "manifest.json").write_text(json.dumps(manifest))

    keep(summarise.output)
"""


def llm_batch_dag(dag_id: str, out: Path, *, retries: int = 0) -> str:
    out.mkdir(parents=True, exist_ok=True)
    return DAG_SOURCE.format(
        dag_id=dag_id, out=str(out), retries=retries, prompts=PROMPTS, result_path=f"file://{out}/results"
    )


def landed_rows(manifest: dict[str, Any]) -> dict[int, dict[str, Any]]:
    path = Path(manifest["result_uri"].removeprefix("file://"))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return {row["index"]: row for row in rows}


def assert_landed_with_one_failure(out: Path) -> dict[str, Any]:
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["adapter"] == "xai" and manifest["request_count"] == 12
    assert manifest["counts"] == {
        "succeeded": 11,
        "errored": 1,
        "invalid_output": 0,
        "expired": 0,
        "cancelled": 0,
        "missing": 0,
    }
    assert manifest["terminal_reason"] == "partial"
    rows = landed_rows(manifest)
    assert sorted(rows) == list(range(12))
    assert rows[FAILING]["status"] == "error" and rows[FAILING]["error"]["message"]
    succeeded = [rows[i] for i in range(12) if i != FAILING]
    assert all(row["status"] == "success" and row["output"] for row in succeeded)
    assert all(row["usage"]["cost_in_usd_ticks"] > 0 for row in succeeded)
    return manifest


def the_only_batch(emulator: Any) -> dict[str, Any]:
    (batch,) = emulator.service.list_batches(limit=100)["batches"]
    return dict(batch)


def test_a_dozen_prompts_run_as_one_xai_batch_through_the_triggerer(
    dags_folder: Path, xai_connection: str, emulator: Any, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run = run_dag_file(llm_batch_dag("llm_batch_xai", out), "llm_batch_xai", dags_folder)
    assert run.state == "success"
    manifest = assert_landed_with_one_failure(out)
    batch = the_only_batch(emulator)
    assert manifest["batch_id"] == batch["batch_id"] and batch["state"]["num_requests"] == 12
    assert batch["name"].startswith(f"llm-batch-{manifest['custom_id_prefix']}-")
    (resumed,) = [json.loads(line) for line in (out / "resumed.jsonl").read_text().splitlines()]
    assert resumed["status"] == "success" and resumed["counts"]["errored"] == 1


def test_a_retry_after_the_landing_failed_re_attaches_to_the_same_batch(
    dags_folder: Path, xai_connection: str, emulator: Any, tmp_path: Path
) -> None:
    # Reading the results is refused once (a non-retryable answer): the first try fails after the
    # batch finished, and the retry must land that batch's results rather than submit again.
    emulator.faults.inject("list_results", status=403)
    out = tmp_path / "out"
    run = run_dag_file(llm_batch_dag("llm_batch_retry", out, retries=1), "llm_batch_retry", dags_folder)
    assert run.state == "success"
    assert {ti.task_id: ti.try_number for ti in run.get_task_instances()}["summarise"] == 2
    manifest = assert_landed_with_one_failure(out)
    assert emulator.calls("create_batch") == 1 and emulator.calls("add_requests") == 1
    assert manifest["batch_id"] == the_only_batch(emulator)["batch_id"]


def test_a_retry_after_a_try_died_while_submitting_fills_the_batch_it_left(
    dags_folder: Path, xai_connection: str, emulator: Any, tmp_path: Path
) -> None:
    # The batch is created, then its first add call is refused: the try fails before common-ai
    # records a batch id. The retry's orphan lookup finds the named, still empty batch; submitting
    # again fills that one instead of creating a second.
    emulator.faults.inject("add_requests", status=403)
    out = tmp_path / "out"
    run = run_dag_file(llm_batch_dag("llm_batch_orphan", out, retries=1), "llm_batch_orphan", dags_folder)
    assert run.state == "success"
    assert {ti.task_id: ti.try_number for ti in run.get_task_instances()}["summarise"] == 2
    manifest = assert_landed_with_one_failure(out)
    assert emulator.calls("create_batch") == 1
    batch = the_only_batch(emulator)
    assert manifest["batch_id"] == batch["batch_id"] and batch["state"]["num_requests"] == 12
