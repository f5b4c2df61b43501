"""File batches in whole DAG runs (``dag.test()``) against the emulator: upload, create, wait, results."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_xai_batch.client.inputs import generated_request_id

MODEL = "grok-4.3"

HEADER = """
import datetime, json, pathlib
import pendulum
from airflow.sdk import DAG, task
from airflow_provider_xai_batch.operators.batch import XAICreateBatchOperator
from airflow_provider_xai_batch.operators.one_task import XAIBatchOperator
from airflow_provider_xai_batch.operators.files import XAIUploadFileOperator
from airflow_provider_xai_batch.operators.results import XAIBatchResultsOperator
from airflow_provider_xai_batch.sensors.batch import XAIBatchSensor
OUT = pathlib.Path({out!r})


def recording(cls):
    # Keeps each failure's message where the test can read it, on every Airflow version.
    class Recording(cls):
        def execute(self, context):
            try:
                return super().execute(context)
            except Exception as error:
                (OUT / f"{{self.task_id}}.error").write_text(str(error))
                raise

        def execute_complete(self, context, **kwargs):
            try:
                return super().execute_complete(context, **kwargs)
            except Exception as error:
                (OUT / f"{{self.task_id}}.error").write_text(str(error))
                raise
    return Recording

Upload = recording(XAIUploadFileOperator)
OneTask = recording(XAIBatchOperator)
"""


def chat(text: str, model: str = MODEL) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


def write_jsonl(path: Path, rows: list[Any], *, compress: bool = False) -> Path:
    data = b"".join((row if isinstance(row, bytes) else json.dumps(row).encode()) + b"\n" for row in rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


# Three shapes, two lines without an id, gzip-compressed: all of it must become one clean file.
MIXED_ROWS: list[dict[str, Any]] = [
    {"custom_id": "o-1", "method": "POST", "url": "/v1/chat/completions", "body": chat("one")},
    {"body": chat("two")},
    {"batch_request_id": "n-3", "batch_request": {"chat_get_completion": chat("three")}},
    {"custom_id": "r-4", "url": "/v1/responses", "body": {"model": MODEL, "input": "four"}},
    {"url": "/v1/chat/completions", "body": {**chat("five"), "stream": True}},
]


def mixed_ids(uri: str) -> list[str]:
    return ["o-1", generated_request_id(uri, "line 2"), "n-3", "r-4", generated_request_id(uri, "line 5")]


def uploaded_files(emulator: Any) -> list[dict[str, Any]]:
    return list(emulator.service.list_files(limit=1000)["data"])


def all_batches(emulator: Any) -> list[dict[str, Any]]:
    return list(emulator.service.list_batches(limit=1000)["batches"])


def tries(run: Any) -> dict[str, int]:
    return {ti.task_id: ti.try_number for ti in run.get_task_instances()}


def states(run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


@pytest.fixture
def quick_files(emulator: Any) -> None:
    emulator.config.update({"file_ingest_seconds": 0.5})


def test_upload_create_wait_and_export_a_file_batch(
    run_dag: Callable[..., Any], xai_conn: Callable[..., str], emulator: Any, quick_files: None,
    tmp_path: Path, out: Path,
) -> None:  # fmt: skip
    source = write_jsonl(tmp_path / "in" / "prompts.jsonl.gz", MIXED_ROWS, compress=True)
    dag = (
        HEADER.format(out=str(out))
        + f"""
with DAG("file_flow", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    upload = XAIUploadFileOperator(task_id="upload", source={str(source)!r})
    create = XAICreateBatchOperator(task_id="create", name="files-{{{{ ds }}}}", input_file_id=upload.output)
    wait = XAIBatchSensor(task_id="wait", batch_id=create.output, poke_interval=0.2, timeout=60)
    export = XAIBatchResultsOperator(task_id="export", batch_id=create.output, output_path={str(out / "results")!r})
    wait >> export

    @task
    def record(file_id, batch_id, batch):
        (OUT / "xcom.json").write_text(json.dumps({{"file_id": file_id, "batch_id": batch_id, "batch": batch}}))

    record(upload.output, create.output, wait.output)
"""
    )
    run = run_dag(dag, "file_flow")

    assert run.state == "success", states(run)
    xcom = json.loads((out / "xcom.json").read_text())
    [uploaded] = uploaded_files(emulator)
    assert xcom["file_id"] == uploaded["id"]
    [batch] = all_batches(emulator)
    assert batch["batch_id"] == xcom["batch_id"] and batch.get("input_file_id") == uploaded["id"]
    assert xcom["batch"]["status"] == "completed"
    # The uploaded file is xAI's format, one line per request, every id deterministic.
    content = emulator.service.file_content(uploaded["id"]).decode()
    lines = [json.loads(line) for line in content.splitlines()]
    expected = mixed_ids(f"file://{source}")
    assert [line["custom_id"] for line in lines] == expected
    assert {line["url"] for line in lines} == {"/v1/chat/completions", "/v1/responses"}
    assert all(line["method"] == "POST" and "stream" not in line["body"] for line in lines)
    manifest = json.loads((out / "results" / "manifest.json").read_text())
    assert (manifest["total"], manifest["succeeded"], manifest["failed"]) == (5, 5, 0)
    rows = [json.loads(line) for line in (out / "results" / "succeeded.jsonl").read_text().splitlines()]
    assert sorted(row["batch_request_id"] for row in rows) == sorted(expected)


@pytest.mark.parametrize("deferrable", [False, True], ids=["poll", "deferrable"])
def test_one_task_file_mode_fails_with_xais_own_message_when_xai_rejects_the_file(
    run_dag: Callable[..., Any], xai_conn: Callable[..., str], emulator: Any, quick_files: None,
    tmp_path: Path, out: Path, deferrable: bool,
) -> None:  # fmt: skip
    # Which models take batch work is xAI's to say; locally the line is valid, xAI rejects it.
    source = write_jsonl(tmp_path / "in.jsonl", [{"custom_id": "a", "body": chat("ok")},
                                                 {"custom_id": "b", "body": chat("no", "grok-old")}])  # fmt: skip
    dag = (
        HEADER.format(out=str(out))
        + f"""
with DAG("file_rejected", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    OneTask(task_id="run", name="rejected", source={str(source)!r}, input_mode="file",
            deferrable={deferrable!r}, poll_interval=0.2, timeout=60)
"""
    )
    run = run_dag(dag, "file_rejected")

    assert run.state == "failed"
    error = (out / "run.error").read_text()
    assert (
        "JSONL file validation failed: line 2: Model grok-old is not supported for batch processing." in error
    )
    [batch] = all_batches(emulator)
    assert batch["cancel_by_xai_message"] and emulator.calls("upload_file") == 1
    assert emulator.calls("add_requests") == 0


def test_bad_lines_and_files_over_the_limits_are_refused_before_anything_is_uploaded(
    run_dag: Callable[..., Any], xai_conn: Callable[..., str], emulator: Any, tmp_path: Path, out: Path
) -> None:
    bad = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            {"custom_id": "a", "body": chat("fine")},
            {"custom_id": "b", "url": "/v1/embeddings", "body": chat("x")},
        ],
    )
    many = write_jsonl(
        tmp_path / "many.jsonl", [{"custom_id": f"q{i}", "body": chat(f"q{i}")} for i in range(3)]
    )
    dag = (
        HEADER.format(out=str(out))
        + f"""
with DAG("file_refused", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    Upload(task_id="bad_line", source={str(bad)!r})
    Upload(task_id="too_many", source={str(many)!r}, max_file_requests=2)
    Upload(task_id="too_big", source={str(many)!r}, max_file_bytes=100)
"""
    )
    run = run_dag(dag, "file_refused")

    assert run.state == "failed"
    assert (
        (out / "bad_line.error")
        .read_text()
        .startswith(f"{bad.as_uri()}, line 2: unknown endpoint url '/v1/embeddings'")
    )
    too_many = (out / "too_many.error").read_text()
    assert "3 requests, over the 2 one batch file may hold" in too_many and many.name in too_many
    assert "bytes, over the 100 bytes one batch file may hold" in (out / "too_big.error").read_text()
    assert emulator.calls("upload_file") == 0 and uploaded_files(emulator) == []


def test_a_retry_re_uses_the_file_whose_upload_answer_was_lost(
    run_dag: Callable[..., Any], xai_conn: Callable[..., str], emulator: Any, tmp_path: Path, out: Path
) -> None:
    # The file is stored, then the connection drops before the answer: the first try fails, and
    # its file id never reached the task state store.
    xai_conn(max_retries=0)
    emulator.faults.inject("upload_file", drop="after")
    source = write_jsonl(tmp_path / "in.jsonl", MIXED_ROWS)
    dag = (
        HEADER.format(out=str(out))
        + f"""
with DAG("file_retry", schedule=None, start_date=pendulum.datetime(2026, 1, 1),
         default_args={{"retries": 1, "retry_delay": datetime.timedelta(0)}}) as dag:
    upload = XAIUploadFileOperator(task_id="upload", source={str(source)!r})

    @task
    def record(file_id):
        (OUT / "file_id").write_text(file_id)

    record(upload.output)
"""
    )
    run = run_dag(dag, "file_retry")

    assert run.state == "success", states(run)
    assert tries(run)["upload"] == 2
    [uploaded] = uploaded_files(emulator)
    assert emulator.calls("upload_file") == 1 and emulator.calls("list_files") >= 1
    assert (out / "file_id").read_text() == uploaded["id"]


def test_a_retry_of_the_one_task_operator_re_uses_its_upload_and_its_batch(
    run_dag: Callable[..., Any], xai_conn: Callable[..., str], emulator: Any, quick_files: None,
    tmp_path: Path, out: Path,
) -> None:  # fmt: skip
    # No retries inside the client: the first try uploads, then meets a transient error creating
    # the batch, and Airflow's retry takes over.
    xai_conn(max_retries=0)
    emulator.faults.inject("create_batch", status=503)
    source = write_jsonl(tmp_path / "in.jsonl", MIXED_ROWS)
    dag = (
        HEADER.format(out=str(out))
        + f"""
with DAG("file_one_task_retry", schedule=None, start_date=pendulum.datetime(2026, 1, 1),
         default_args={{"retries": 1, "retry_delay": datetime.timedelta(0)}}) as dag:
    run = XAIBatchOperator(task_id="run", name="file-mode", source={str(source)!r}, input_mode="file",
                           output_path={str(out / "results")!r}, deferrable=True, poll_interval=0.2, timeout=60)
"""
    )
    run = run_dag(dag, "file_one_task_retry")

    assert run.state == "success", states(run)
    assert tries(run)["run"] == 2
    assert emulator.calls("upload_file") == 1 and len(uploaded_files(emulator)) == 1
    assert emulator.calls("create_batch") == 2 and len(all_batches(emulator)) == 1
    manifest = json.loads((out / "results" / "manifest.json").read_text())
    assert manifest["succeeded"] == 5


def test_the_upload_reads_a_gzip_file_from_s3(
    run_dag: Callable[..., Any], xai_conn: Callable[..., str], emulator: Any, s3_bucket: str, s3_endpoint: str,
    tmp_path: Path, out: Path,
) -> None:  # fmt: skip
    import boto3

    data = gzip.compress(b"".join(json.dumps(row).encode() + b"\n" for row in MIXED_ROWS))
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    s3.put_object(Bucket=s3_bucket, Key="prompts/day.jsonl.gz", Body=data)
    uri = f"s3://{s3_bucket}/prompts/day.jsonl.gz"
    dag = (
        HEADER.format(out=str(out))
        + f"""
with DAG("file_s3", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    XAIUploadFileOperator(task_id="upload", source={uri!r}, source_conn_id="aws_test")
"""
    )
    run = run_dag(dag, "file_s3")

    assert run.state == "success", states(run)
    [uploaded] = uploaded_files(emulator)
    assert uploaded["filename"].startswith("day-")
    lines = emulator.service.file_content(uploaded["id"]).decode().splitlines()
    # The same ids as the add operator gives these lines (it labels a file as the source reads it).
    from airflow_provider_xai_batch.sources import expand_sources

    [item] = expand_sources(uri, conn_id="aws_test")
    assert [json.loads(line)["custom_id"] for line in lines] == mixed_ids(item.uri)
