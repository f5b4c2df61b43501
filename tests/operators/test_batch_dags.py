"""Whole DAGs run with ``dag.test()`` against the emulator: XCom lists, files on disk and in S3, retries."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.batch_requests import expected_file_ids, native, openai_style, short
from support.emulator import all_batches
from support.emulator import held_request_ids as batch_request_ids
from support.jsonl import write_jsonl

from airflow_provider_xai_batch.client.inputs import generated_request_id
from airflow_provider_xai_batch.emulator.faults import FaultDecision

HEADER = """
import datetime, json, pathlib
import pendulum
from airflow.sdk import DAG, task
from airflow_provider_xai_batch.operators.batch import (
    XAIAddBatchRequestsOperator, XAICancelBatchOperator, XAICreateBatchOperator,
)
OUT = pathlib.Path({out!r})


class RecordingAdd(XAIAddBatchRequestsOperator):
    # Failure callbacks get the exception only on newer Airflow; this works on every version.
    def execute(self, context):
        try:
            return super().execute(context)
        except Exception as error:
            OUT.with_suffix(".error").write_text(str(error))
            raise
"""

# Three files mixing the three shapes, some lines without ids, one of them gzip-compressed.
FILES: dict[str, tuple[list[dict[str, Any]], bool]] = {
    "part-1.jsonl": ([native("n one", "p1-a"), native("n two"), short("s three", "p1-c")], False),
    "nested/part-2.jsonl": (
        [openai_style("o one", "p2-a"), openai_style("r two", url="/v1/responses"), short("s three")],
        False,
    ),
    "part-3.jsonl.gz": ([short("g one"), openai_style("g two", "p3-b"), native("g three", "p3-c")], True),
}


def write_input_files(folder: Path) -> None:
    for name, (rows, compress) in FILES.items():
        write_jsonl(folder / name, rows, compress=compress)
    (folder / "README.txt").write_text("not requests")


def expected_ids(prefix: str) -> set[str]:
    ids: set[str] = set()
    for name, (rows, _) in FILES.items():
        ids.update(expected_file_ids(f"{prefix}/{name}", rows))
    return ids


def files_dag(dag_id: str, out: Path, source: str, source_conn_id: str | None, retries: int = 0) -> str:
    return (
        HEADER.format(out=str(out))
        + f"""
with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1),
         default_args={{"retries": {retries}, "retry_delay": datetime.timedelta(0)}}) as dag:
    create = XAICreateBatchOperator(task_id="create", name="files-{{{{ ds }}}}")
    add = XAIAddBatchRequestsOperator(
        task_id="add", batch_id=create.output, source={source!r}, source_conn_id={source_conn_id!r},
    )

    @task
    def record(result):
        OUT.write_text(json.dumps(result))

    record(add.output)
"""
    )


def test_xcom_lists_from_upstream_tasks_single_and_mapped(
    run_dag: Callable[..., Any], xai_connection: str, emulator: Any, tmp_path: Path
) -> None:
    out = tmp_path / "out.json"
    source = (
        HEADER.format(out=str(out))
        + """
with DAG("xcom_lists", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    @task
    def make_requests():
        return [
            {"batch_request_id": "n-1", "batch_request": {"chat_get_completion": {
                "model": "grok-4.3", "messages": [{"role": "user", "content": "one"}]}}},
            {"custom_id": "o-2", "url": "/v1/responses", "body": {"model": "grok-4.3", "input": "two"}},
            {"body": {"model": "grok-4.3", "messages": [{"role": "user", "content": "three"}]}},
        ]

    @task
    def make_shards():
        # Two shards with the same id-less request: their ids must still differ.
        same = {"body": {"model": "grok-4.3", "messages": [{"role": "user", "content": "same"}]}}
        return [[same], [same]]

    create = XAICreateBatchOperator(task_id="create", name="xcom-{{ ds }}")
    add = XAIAddBatchRequestsOperator(task_id="add", batch_id=create.output, requests=make_requests())
    shards = XAIAddBatchRequestsOperator.partial(task_id="add_shard", batch_id=create.output).expand(
        requests=make_shards()
    )
    cancel = XAICancelBatchOperator(task_id="cancel", batch_id=create.output)
    [add, shards] >> cancel

    @task
    def record(added, shard_results, cancelled):
        OUT.write_text(json.dumps({"add": added, "shards": list(shard_results), "cancel": cancelled}))

    record(add.output, shards.output, cancel.output)
"""
    )
    run = run_dag(source, "xcom_lists")
    assert run.state == "success"
    result = json.loads(out.read_text())
    (batch,) = all_batches(emulator)
    assert result["add"] == {"batch_id": batch["batch_id"], "added": 3}
    assert result["shards"] == [{"batch_id": batch["batch_id"], "added": 1}] * 2
    assert result["cancel"]["batch_id"] == batch["batch_id"] and result["cancel"]["status"] == "cancelled"
    assert batch["name"].startswith("xcom-2026-")
    assert sorted(batch_request_ids(emulator, batch["batch_id"])) == sorted(
        [
            "n-1",
            "o-2",
            generated_request_id("add.requests", 2),
            generated_request_id("add_shard[0].requests", 0),
            generated_request_id("add_shard[1].requests", 0),
        ]
    )


def test_three_files_through_a_glob_from_local_storage(
    run_dag: Callable[..., Any], xai_connection: str, emulator: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    write_input_files(folder)
    out = tmp_path / "out.json"
    run = run_dag(files_dag("local_files", out, f"file://{folder}/**/*.jsonl*", None), "local_files")
    assert run.state == "success"
    (batch,) = all_batches(emulator)
    assert json.loads(out.read_text()) == {"batch_id": batch["batch_id"], "added": 9}
    ids = batch_request_ids(emulator, batch["batch_id"])
    assert len(ids) == 9 and set(ids) == expected_ids(f"file://{folder}")


def test_three_files_through_a_glob_from_s3(
    run_dag: Callable[..., Any], xai_connection: str, emulator: Any, s3_bucket: str, tmp_path: Path
) -> None:
    from airflow.sdk import ObjectStoragePath

    folder = tmp_path / "in"
    write_input_files(folder)
    for path in folder.rglob("*"):
        if path.is_file():
            target = ObjectStoragePath(f"s3://{s3_bucket}/in/{path.relative_to(folder)}", conn_id="aws_test")
            target.write_bytes(path.read_bytes())
    out = tmp_path / "out.json"
    run = run_dag(files_dag("s3_files", out, f"s3://{s3_bucket}/in/**/*.jsonl*", "aws_test"), "s3_files")
    assert run.state == "success"
    (batch,) = all_batches(emulator)
    assert json.loads(out.read_text()) == {"batch_id": batch["batch_id"], "added": 9}
    ids = batch_request_ids(emulator, batch["batch_id"])
    assert len(ids) == 9 and set(ids) == expected_ids(f"s3://{s3_bucket}/in")


def test_retries_after_dropped_connections_re_attach_and_add_exactly_the_input(
    run_dag: Callable[..., Any], xai_conn: Callable[..., str], emulator: Any, tmp_path: Path
) -> None:
    # No retries inside the client, so each dropped connection fails the try; two requests per add
    # call, so the input takes five calls.
    xai_conn(max_retries=0, max_requests_per_call=2)
    folder = tmp_path / "in"
    write_input_files(folder)
    # The create call is applied, then its answer is lost: the first try of "create" fails.
    emulator.faults.inject("create_batch", drop="after")
    # The third add call is applied, then its answer is lost: the first try of "add" fails mid-way.
    decide = emulator.faults.decide
    dropped: list[int] = []

    def drop_third_add(route: str) -> FaultDecision | None:
        if route == "add_requests" and emulator.calls("add_requests") == 3 and not dropped:
            dropped.append(1)
            return FaultDecision(drop="after")
        return decide(route)

    emulator.faults.decide = drop_third_add
    out = tmp_path / "out.json"
    run = run_dag(files_dag("retries", out, f"{folder}/**/*.jsonl*", None, retries=1), "retries")
    assert run.state == "success"
    assert emulator.calls("create_batch") == 1  # the retry found the batch by its name
    (batch,) = all_batches(emulator)
    assert dropped and emulator.calls("add_requests") == 3 + 5
    ids = batch_request_ids(emulator, batch["batch_id"])
    assert len(ids) == 9 and set(ids) == expected_ids(f"file://{folder}")
    assert json.loads(out.read_text()) == {"batch_id": batch["batch_id"], "added": 9}
    tries = {ti.task_id: ti.try_number for ti in run.get_task_instances()}
    assert tries["create"] == 2 and tries["add"] == 2


def test_a_non_list_xcom_fails_the_task_naming_it_and_adds_nothing(
    run_dag: Callable[..., Any], xai_connection: str, emulator: Any, tmp_path: Path
) -> None:
    out = tmp_path / "out.json"
    source = (
        HEADER.format(out=str(out))
        + """
with DAG("non_list", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    @task
    def make_requests():
        return {"custom_id": "a", "body": {"model": "grok-4.3", "messages": [{"role": "user", "content": "x"}]}}

    create = XAICreateBatchOperator(task_id="create", name="bad")
    RecordingAdd(task_id="add", batch_id=create.output, requests=make_requests())
"""
    )
    run = run_dag(source, "non_list")
    assert run.state == "failed"
    assert out.with_suffix(".error").read_text() == (
        "add.requests: requests must be a list of request objects, got dict"
    )
    assert emulator.calls("add_requests") == 0
