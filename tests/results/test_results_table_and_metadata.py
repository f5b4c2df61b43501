"""Results as Parquet tables, and the input's own ``"metadata"`` back on every result row.

Whole DAG runs (``dag.test()``) against the emulator over loopback: ``XAIBatchOperator`` with an
XCom list and with a JSONL file, a task retry, a resubmission round, and the create/add/sensor/
results pipeline with its metadata sidecar; the Parquet files are read back with pyarrow.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from support.constants import TEST_API_KEY

from airflow_provider_xai_batch.client import XAIBatchClient, XAIInputError
from airflow_provider_xai_batch.client.inputs import (
    MAX_METADATA_BYTES,
    generated_request_id,
    normalise_request,
    request_metadata,
)
from airflow_provider_xai_batch.emulator.faults import FaultDecision
from airflow_provider_xai_batch.results import export_results
from airflow_provider_xai_batch.results.metadata import (
    MetadataLookup,
    read_sidecar,
    write_sidecar,
)
from airflow_provider_xai_batch.results.staging import OutputFolder, resolve_output_folder
from airflow_provider_xai_batch.results.table import (
    SUCCEEDED_COLUMNS,
    ParquetUnavailableError,
    require_output_format,
)

MODEL = "grok-4.3"
# A value that appears only in metadata: if it ever reached the service, its request log would show it.
MARKER = "only-in-metadata-7f3a"


def chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}], **extra}


# One request per input shape, each with metadata; one fails for good (max_tokens), one has none.
XCOM_ROWS: list[dict[str, Any]] = [
    {
        "batch_request_id": "q0",
        "batch_request": {"chat_get_completion": chat("native")},
        "metadata": {"doc": 0, "tag": MARKER},
    },
    {
        "custom_id": "q1",
        "method": "POST",
        "url": "/v1/responses",
        "body": {"model": MODEL, "input": "jsonl style"},
        "metadata": {"doc": 1, "langs": ["de", "fr"]},
    },
    {"custom_id": "q2", "body": chat("short"), "metadata": {"doc": 2, "split": "test"}},
    {"custom_id": "q3", "body": chat("never", max_tokens=-5), "metadata": {"doc": 3}},
    {"custom_id": "q4", "body": chat("no metadata")},
]

ONE_TASK_DAG = """
import datetime, json, pathlib
import pendulum
from airflow.sdk import DAG, task
from airflow_provider_xai_batch.operators.one_task import ResubmitPolicy, XAIBatchOperator

with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1),
         default_args={{"retries": {retries}, "retry_delay": datetime.timedelta(0)}}) as dag:
    {upstream}
    run = XAIBatchOperator(
        task_id="run", name="table", {input}, output_path={output_path!r}, poll_interval=0.2,
        timeout=60, output_format={output_format!r}, {options}
    )

    @task
    def record(value):
        pathlib.Path({xcom!r}).write_text(json.dumps(value))

    record(run.output)
"""

XCOM_UPSTREAM = """
    @task
    def make_requests():
        return {rows!r}

    requests = make_requests()
"""


def one_task_dag(
    dag_id: str,
    tmp_path: Path,
    *,
    input: str,
    output_format: str = "jsonl",
    upstream: str = "",
    retries: int = 0,
    options: str = "",
) -> str:
    return ONE_TASK_DAG.format(
        dag_id=dag_id,
        retries=retries,
        upstream=upstream.strip(),
        input=input,
        output_path=str(tmp_path / "results"),
        output_format=output_format,
        options=options,
        xcom=str(tmp_path / "xcom.json"),
    )


def read_jsonl(path: Path) -> dict[str, dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return {row["batch_request_id"]: row for row in rows}


def states(run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


# -- the metadata field of an input item


def test_metadata_is_kept_beside_the_request_in_every_shape_and_never_in_it() -> None:
    for position, row in enumerate(XCOM_ROWS):
        request = normalise_request(row, source="requests", position=position)
        assert "metadata" not in request
        expected = row.get("metadata")
        stored = request_metadata(request)
        assert (json.loads(stored) if stored is not None else None) == expected


@pytest.mark.parametrize(
    ("metadata", "problem"),
    [
        (["not", "an", "object"], "'metadata' must be a JSON object, got list"),
        ({"score": float("nan")}, "metadata.score is nan: JSON has no NaN or Infinity"),
        ({"blob": "x" * MAX_METADATA_BYTES}, "over the 65,536-byte limit"),
    ],
    ids=["list", "nan", "too-big"],
)
def test_bad_metadata_is_refused_at_its_item(metadata: Any, problem: str) -> None:
    row = {"custom_id": "q", "body": chat("hi"), "metadata": metadata}
    with pytest.raises(XAIInputError, match="requests, item 4") as caught:
        normalise_request(row, source="requests", position=4)
    assert problem in str(caught.value)


def test_sidecar_runs_merge_sorted_and_a_rewrite_leaves_the_same_files(tmp_path: Path) -> None:
    folder = OutputFolder(resolve_output_folder(tmp_path / "meta"))
    requests = [
        normalise_request(
            {"custom_id": f"r{9 - i}", "body": chat("x"), "metadata": {"i": i}}, source="s", position=i
        )
        for i in range(10)
    ]
    assert write_sidecar(folder, requests, prefix="add", run_rows=3) == 10
    assert sorted(path.name for path in (tmp_path / "meta").iterdir()) == [
        f"add-0000{n}.jsonl" for n in range(4)
    ]
    merged = list(read_sidecar(folder))
    assert [entry.batch_request_id for entry in merged] == [f"r{n}" for n in range(10)]
    # A retry writing fewer, bigger runs leaves no run of the earlier write behind.
    write_sidecar(folder, requests, prefix="add", run_rows=100)
    assert [path.name for path in (tmp_path / "meta").iterdir()] == ["add-00000.jsonl"]
    lookup = MetadataLookup(read_sidecar(folder))
    found = [lookup.get(f"r{n}") for n in (0, 5, 9)]
    assert [json.loads(entry.metadata or b"null") for entry in found if entry] == [
        {"i": 9},
        {"i": 4},
        {"i": 0},
    ]
    assert lookup.get("r1") is None and lookup.missed == 1  # asked out of order: found nothing


# -- XAIBatchOperator


def test_one_task_parquet_from_an_xcom_list_carries_metadata_and_kinds(
    run_dag: Callable[..., Any], xai_conn: Callable[..., str], emulator: Any, tmp_path: Path
) -> None:
    source = one_task_dag(
        "table_xcom",
        tmp_path,
        input="requests=requests",
        upstream=XCOM_UPSTREAM.format(rows=XCOM_ROWS),
        output_format="parquet",
    )

    run = run_dag(source, "table_xcom")

    assert run.state == "success", states(run)
    manifest = json.loads((tmp_path / "results" / "manifest.json").read_text())
    results = tmp_path / "results"
    assert manifest["files"] == {
        "succeeded": f"file://{results}/succeeded.parquet",
        "failed": f"file://{results}/failed.parquet",
    }
    assert sorted(path.name for path in results.iterdir()) == [
        "failed.parquet",
        "manifest.json",
        "succeeded.parquet",
    ]
    succeeded = pq.read_table(results / "succeeded.parquet")
    failed = pq.read_table(results / "failed.parquet")
    assert (succeeded.num_rows, failed.num_rows) == (manifest["succeeded"], manifest["failed"]) == (4, 1)
    assert manifest["file_details"]["succeeded"]["bytes"] == (results / "succeeded.parquet").stat().st_size
    assert set(SUCCEEDED_COLUMNS) <= set(succeeded.column_names)
    assert str(succeeded.schema.field("cost_usd_ticks").type) == "int64"
    assert str(succeeded.schema.field("media_uris").type) == "list<element: string>"
    rows = {row["batch_request_id"]: row for row in succeeded.to_pylist()}
    assert {key: json.loads(row["metadata"]) if row["metadata"] else None for key, row in rows.items()} == {
        "q0": {"doc": 0, "tag": MARKER},
        "q1": {"doc": 1, "langs": ["de", "fr"]},
        "q2": {"doc": 2, "split": "test"},
        "q4": None,
    }
    for row in rows.values():
        response = json.loads(row["response"])
        assert row["kind"] == "chat_get_completion" and row["model"] == response["model"] == MODEL
        assert row["text"] == response["choices"][0]["message"]["content"] and row["text"]
        assert row["finish_reason"] == "stop" and row["media_uris"] == []
        usage = response["usage"]
        assert (row["prompt_tokens"], row["completion_tokens"]) == (
            usage["prompt_tokens"],
            usage["completion_tokens"],
        )
        assert row["cost_usd_ticks"] == usage["cost_in_usd_ticks"] > 0
    assert sum(row["cost_usd_ticks"] for row in rows.values()) == manifest["cost_usd_ticks"]
    (failure,) = failed.to_pylist()
    assert failure["batch_request_id"] == "q3" and "max_tokens must be positive" in failure["error"]
    assert failure["kind"] == "chat_get_completion" and json.loads(failure["metadata"]) == {"doc": 3}
    assert not emulator.request_log.contains(MARKER)  # metadata never went to the service
    assert json.loads((tmp_path / "xcom.json").read_text()) == manifest


def test_one_task_jsonl_from_a_file_keeps_metadata_across_a_task_retry(
    run_dag: Callable[..., Any], xai_conn: Callable[..., str], emulator: Any, tmp_path: Path
) -> None:
    lines = [
        {"body": chat("first"), "metadata": {"row": 1}},
        {"url": "/v1/images/generations", "body": {"model": "grok-imagine-image", "prompt": "a cat"}, "metadata": {"row": 2}},
        {"body": chat("broken", max_tokens=-5), "metadata": {"row": 3, "why": MARKER}},
    ]  # fmt: skip
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    ids = [generated_request_id(path.as_uri(), f"line {n}") for n in (1, 2, 3)]
    # The first try meets a transient error reading the results (no retries in the client), and
    # Airflow's retry re-attaches to the batch and writes the results.
    xai_conn(max_retries=0)
    decide = emulator.faults.decide
    failed_once: list[int] = []

    def fail_the_export(route: str) -> FaultDecision | None:
        if route == "list_results" and not failed_once:
            failed_once.append(1)
            return FaultDecision(status=503)
        return decide(route)

    emulator.faults.decide = fail_the_export
    source = one_task_dag("table_retry", tmp_path, input=f"source={str(path)!r}", retries=1)

    run = run_dag(source, "table_retry")

    assert run.state == "success", states(run)
    assert failed_once and {ti.task_id: ti.try_number for ti in run.get_task_instances()}["run"] == 2
    assert emulator.calls("create_batch") == 1
    succeeded = read_jsonl(tmp_path / "results" / "succeeded.jsonl")
    failed = read_jsonl(tmp_path / "results" / "failed.jsonl")
    assert {key: row["metadata"] for key, row in succeeded.items()} == {
        ids[0]: {"row": 1},
        ids[1]: {"row": 2},
    }
    assert succeeded[ids[1]]["kind"] == "image_generation"
    assert failed[ids[2]]["metadata"] == {"row": 3, "why": MARKER}
    assert failed[ids[2]]["kind"] == "chat_get_completion"
    assert not emulator.request_log.contains(MARKER)


def test_metadata_survives_a_resubmission_round(
    run_dag: Callable[..., Any], xai_conn: Callable[..., str], emulator: Any, tmp_path: Path
) -> None:
    rows = [
        {"custom_id": "a", "body": chat("fine"), "metadata": {"n": "a"}},
        {"custom_id": "b", "body": chat("[[fail-transient]] busy"), "metadata": {"n": "b"}},
        {"custom_id": "c", "body": chat("[[fail]] broken"), "metadata": {"n": "c"}},
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    source = one_task_dag(
        "table_rounds",
        tmp_path,
        input=f"source={str(path)!r}",
        output_format="parquet",
        options="resubmit=ResubmitPolicy(rounds=1)",
    )

    run = run_dag(source, "table_rounds")

    assert run.state == "success", states(run)
    manifest = json.loads((tmp_path / "results" / "manifest.json").read_text())
    assert (manifest["succeeded"], manifest["failed"], manifest["recovered"]) == (2, 1, 1)
    succeeded = pq.read_table(tmp_path / "results" / "succeeded.parquet").to_pylist()
    failed = pq.read_table(tmp_path / "results" / "failed.parquet").to_pylist()
    assert [(row["batch_request_id"], json.loads(row["metadata"]), row["attempts"]) for row in succeeded] == [
        ("a", {"n": "a"}, 1),
        ("b", {"n": "b"}, 2),
    ]
    assert [(row["batch_request_id"], json.loads(row["metadata"]), row["kind"]) for row in failed] == [
        ("c", {"n": "c"}, "chat_get_completion")
    ]


def test_empty_input_writes_empty_parquet_tables(
    run_dag: Callable[..., Any], xai_conn: Callable[..., str], emulator: Any, tmp_path: Path
) -> None:
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "succeeded.jsonl").write_text("left by an earlier export\n")
    source = one_task_dag(
        "table_empty",
        tmp_path,
        input="requests=requests",
        upstream=XCOM_UPSTREAM.format(rows=[]),
        output_format="parquet",
    )

    run = run_dag(source, "table_empty")

    assert run.state == "success", states(run)
    assert emulator.calls("create_batch") == 0
    manifest = json.loads((tmp_path / "results" / "manifest.json").read_text())
    assert (manifest["batch_id"], manifest["total"]) == (None, 0)
    assert sorted(path.name for path in (tmp_path / "results").iterdir()) == [
        "failed.parquet",
        "manifest.json",
        "succeeded.parquet",
    ]
    assert pq.read_table(tmp_path / "results" / "succeeded.parquet").num_rows == 0
    assert pq.read_table(tmp_path / "results" / "failed.parquet").column_names[:3] == [
        "batch_request_id",
        "kind",
        "error",
    ]


def test_parquet_without_pyarrow_fails_at_task_start_naming_the_extra(
    run_dag: Callable[..., Any],
    xai_conn: Callable[..., str],
    emulator: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # None in sys.modules makes any import of the name fail, as when it is not installed.
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ParquetUnavailableError, match=r"install airflow-provider-xai-batch\[parquet\]"):
        require_output_format("parquet")
    source = one_task_dag(
        "table_no_pyarrow",
        tmp_path,
        input="requests=requests",
        upstream=XCOM_UPSTREAM.format(rows=XCOM_ROWS[:1]),
        output_format="parquet",
    )

    run = run_dag(source, "table_no_pyarrow")

    assert states(run)["run"] == "failed"
    assert emulator.calls("create_batch") == 0  # refused before a batch existed


# -- the create/add/sensor/results pipeline

PIPELINE_DAG = """
import pendulum
from airflow.sdk import DAG, task
from airflow_provider_xai_batch.operators.batch import XAIAddBatchRequestsOperator, XAICreateBatchOperator
from airflow_provider_xai_batch.operators.results import XAIBatchResultsOperator
from airflow_provider_xai_batch.sensors.batch import XAIBatchSensor

with DAG("table_pipeline", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    create = XAICreateBatchOperator(task_id="create", name="pipeline")

    @task
    def make_requests():
        return {rows!r}

    from_xcom = XAIAddBatchRequestsOperator(
        task_id="add_list", batch_id=create.output, requests=make_requests(), metadata_path={meta!r}
    )
    from_file = XAIAddBatchRequestsOperator(
        task_id="add_file", batch_id=create.output, source={source!r}, metadata_path={meta!r}
    )
    wait = XAIBatchSensor(task_id="wait", batch_id=create.output, poke_interval=0.2)
    export = XAIBatchResultsOperator(
        task_id="export", batch_id=create.output, output_path={output!r}, metadata_path={meta!r}
    )
    [from_xcom, from_file] >> wait >> export
"""


def test_pipeline_finds_the_metadata_the_add_tasks_wrote(
    run_dag: Callable[..., Any], xai_conn: Callable[..., str], emulator: Any, tmp_path: Path
) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(
        json.dumps({"custom_id": "f1", "body": chat("from a file"), "metadata": {"from": "file"}}) + "\n"
        + json.dumps({"custom_id": "f2", "body": chat("bad", max_tokens=-1), "metadata": {"from": "file"}})
        + "\n"
    )  # fmt: skip
    source = PIPELINE_DAG.format(
        rows=XCOM_ROWS,
        meta=f"file://{tmp_path / 'meta'}",
        source=str(path),
        output=str(tmp_path / "results"),
    )

    run = run_dag(source, "table_pipeline")

    assert run.state == "success", states(run)
    (batch_folder,) = (tmp_path / "meta").iterdir()
    assert sorted(item.name for item in batch_folder.iterdir()) == [
        "add_file-00000.jsonl",
        "add_list-00000.jsonl",
    ]
    succeeded = read_jsonl(tmp_path / "results" / "succeeded.jsonl")
    failed = read_jsonl(tmp_path / "results" / "failed.jsonl")
    manifest = json.loads((tmp_path / "results" / "manifest.json").read_text())
    assert (len(succeeded), len(failed)) == (manifest["succeeded"], manifest["failed"]) == (5, 2)
    assert {key: row.get("metadata") for key, row in succeeded.items()} == {
        "f1": {"from": "file"},
        "q0": {"doc": 0, "tag": MARKER},
        "q1": {"doc": 1, "langs": ["de", "fr"]},
        "q2": {"doc": 2, "split": "test"},
        "q4": None,
    }
    assert {key: (row["kind"], row["metadata"]) for key, row in failed.items()} == {
        "f2": ("chat_get_completion", {"from": "file"}),
        "q3": ("chat_get_completion", {"doc": 3}),
    }
    assert not emulator.request_log.contains(MARKER)


# -- object storage


def test_parquet_with_metadata_to_s3(emulator: Any, s3_bucket: str, s3_endpoint: str, tmp_path: Path) -> None:
    import boto3

    requests = [
        {"custom_id": f"s{i:03d}", "body": chat(f"q{i}", **({"max_tokens": -1} if i % 10 == 0 else {})),
         "metadata": {"i": i}}
        for i in range(100)
    ]  # fmt: skip
    meta = OutputFolder(resolve_output_folder(tmp_path / "meta"))
    write_sidecar(meta, (normalise_request(row, source="r", position=n) for n, row in enumerate(requests)))
    with XAIBatchClient(TEST_API_KEY, base_url=emulator.url) as client:
        batch = client.create_batch("s3-table")
        client.add_requests(batch.batch_id, requests)
        manifest = export_results(
            client,
            batch.batch_id,
            f"s3://{s3_bucket}/tables/run",
            output_conn_id="aws_test",
            output_format="parquet",
            metadata=read_sidecar(meta),
            page_size=30,
        )

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    listed = s3.list_objects_v2(Bucket=s3_bucket, Prefix="tables/run/")
    assert {item["Key"].rsplit("/", 1)[-1] for item in listed["Contents"]} == {
        "succeeded.parquet",
        "failed.parquet",
        "manifest.json",
    }
    download = tmp_path / "succeeded.parquet"
    download.write_bytes(s3.get_object(Bucket=s3_bucket, Key="tables/run/succeeded.parquet")["Body"].read())
    table = pq.read_table(download)
    assert table.num_rows == manifest["succeeded"] == 90 and manifest["failed"] == 10
    assert [json.loads(text)["i"] for text in table.column("metadata").to_pylist()] == [
        i for i in range(100) if i % 10
    ]


def test_an_input_deleted_while_the_batch_ran_still_gives_the_results(
    run_dag: Callable[..., Any], xai_conn: Callable[..., str], emulator: Any, tmp_path: Path
) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"custom_id": "d1", "body": chat("hi"), "metadata": {"row": 1}}) + "\n")
    decide = emulator.faults.decide

    def delete_after_sending(route: str) -> FaultDecision | None:
        if route == "get_batch" and emulator.calls("add_requests") and path.exists():
            path.unlink()  # an upstream clean-up, while the batch runs
        return decide(route)

    emulator.faults.decide = delete_after_sending
    source = one_task_dag("table_deleted_input", tmp_path, input=f"source={str(path)!r}")

    run = run_dag(source, "table_deleted_input")

    assert run.state == "success", states(run)
    assert not path.exists()
    assert read_jsonl(tmp_path / "results" / "succeeded.jsonl")["d1"].get("metadata") is None
