"""Media exports as a user meets them: the results operator in ``dag.test()`` runs, to S3 and after expiry."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from support.constants import TEST_API_KEY
from support.dags import task_states
from support.media_files import check_mp4, decode_png

from airflow_provider_xai_batch.client import XAIBatchClient
from airflow_provider_xai_batch.emulator import EmulatorServer, ManualClock

DAG_SOURCE = """
import pendulum
from airflow.sdk import DAG

from airflow_provider_xai_batch.operators.results import XAIBatchResultsOperator

with DAG("{dag_id}", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    XAIBatchResultsOperator(
        task_id="export",
        batch_id="{batch_id}",
        output_path="{output}",
        output_conn_id={conn!r},
        allow_partial={allow_partial},
    )
"""


def media_batch(emulator: EmulatorServer) -> str:
    image = {"model": "grok-imagine-image", "prompt": "a red teapot"}
    with XAIBatchClient(TEST_API_KEY, base_url=emulator.url) as client:
        batch = client.create_batch("media-dag")
        client.add_requests(
            batch.batch_id,
            [
                {"batch_request_id": "img", "batch_request": {"image_generation": {**image, "n": 2}}},
                {
                    "batch_request_id": "vid",
                    "batch_request": {"video_generation": {"model": "grok-imagine-video", "prompt": "steam"}},
                },
            ],
        )
        return batch.batch_id


def dag_source(
    dag_id: str, batch_id: str, output: str, conn: str | None = None, allow_partial: bool = False
) -> str:
    return DAG_SOURCE.format(
        dag_id=dag_id, batch_id=batch_id, output=output, conn=conn, allow_partial=allow_partial
    )


def test_results_operator_stores_media_in_s3(
    emulator: EmulatorServer,
    manual_clock: ManualClock,
    xai_connection: str,
    s3_bucket: str,
    s3_endpoint: str,
    run_dag: Callable[..., Any],
) -> None:
    batch_id = media_batch(emulator)
    source = dag_source("media_s3", batch_id, f"s3://{s3_bucket}/runs/one", conn="aws_test")
    run = run_dag(source, "media_s3")
    assert task_states(run) == {"export": "success"}

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    manifest = json.loads(s3.get_object(Bucket=s3_bucket, Key="runs/one/manifest.json")["Body"].read())
    assert (manifest["media"]["files"], manifest["media"]["failed"]) == (3, 0)
    rows = [
        json.loads(line)
        for line in s3.get_object(Bucket=s3_bucket, Key="runs/one/succeeded.jsonl")["Body"]
        .read()
        .splitlines()
    ]
    stored = {entry["uri"]: entry for row in rows for entry in row["media"]}
    assert sorted(stored) == [
        f"s3://{s3_bucket}/runs/one/media/img-0.png",
        f"s3://{s3_bucket}/runs/one/media/img-1.png",
        f"s3://{s3_bucket}/runs/one/media/vid-0.mp4",
    ]
    total = 0
    for uri, entry in stored.items():
        body = s3.get_object(Bucket=s3_bucket, Key=uri.split("/", 3)[3])["Body"].read()
        assert hashlib.sha256(body).hexdigest() == entry["sha256"] and len(body) == entry["bytes"]
        if uri.endswith(".png"):
            assert decode_png(body) == (64, 64)
        else:
            assert check_mp4(body) == 24
        total += len(body)
    assert manifest["media"]["bytes"] == total
    media_calls = [entry for entry in emulator.request_log if entry.route == "media_file"]
    assert len(media_calls) == 3 and all(call.header("authorization") is None for call in media_calls)


def test_results_operator_after_expiry_fails_unless_partial_is_allowed(
    emulator: EmulatorServer,
    manual_clock: ManualClock,
    xai_connection: str,
    tmp_path: Path,
    run_dag: Callable[..., Any],
) -> None:
    batch_id = media_batch(emulator)
    manual_clock.advance(2 * 3600)
    strict = run_dag(dag_source("media_strict", batch_id, f"file://{tmp_path}/strict"), "media_strict")
    assert task_states(strict) == {"export": "failed"}
    manifest = json.loads((tmp_path / "strict" / "manifest.json").read_text())
    assert (manifest["media"]["failed"], manifest["media"]["expired"]) == (3, 3)
    assert any("expire one hour after generation" in note for note in manifest["notes"])

    lenient = run_dag(
        dag_source("media_lenient", batch_id, f"file://{tmp_path}/lenient", allow_partial=True),
        "media_lenient",
    )
    assert task_states(lenient) == {"export": "success"}
    manifest = json.loads((tmp_path / "lenient" / "manifest.json").read_text())
    named = sorted((item["batch_request_id"], item["index"]) for item in manifest["media"]["failures"])
    assert named == [("img", 0), ("img", 1), ("vid", 0)]


ONE_TASK_SOURCE = """
import pendulum
from airflow.sdk import DAG

from airflow_provider_xai_batch.operators.one_task import XAIBatchOperator

REQUESTS = [
    {{"custom_id": "pic", "url": "/v1/images/generations",
      "body": {{"model": "grok-imagine-image", "prompt": "a fox", "n": 2}}}},
]

with DAG("media_one_task", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    for task_id, options in [
        ("strict", {{}}),
        ("lenient", {{"allow_media_failures": True}}),
        ("urls", {{"media": "urls"}}),
    ]:
        XAIBatchOperator(
            task_id=task_id,
            name=task_id,
            requests=REQUESTS,
            output_path="file://{folder}/" + task_id,
            poll_interval=0.1,
            **options,
        )
"""


def test_batch_operator_passes_the_media_options_through(
    emulator: EmulatorServer, xai_connection: str, tmp_path: Path, run_dag: Callable[..., Any]
) -> None:
    emulator.config.update({"media_ttl_seconds": 0})  # every URL has expired by the time it is read
    run = run_dag(ONE_TASK_SOURCE.format(folder=tmp_path), "media_one_task")
    assert task_states(run) == {"strict": "failed", "lenient": "success", "urls": "success"}
    for task_id, failed in (("strict", 2), ("lenient", 2), ("urls", 0)):
        manifest = json.loads((tmp_path / task_id / "manifest.json").read_text())
        assert (manifest["media"]["failed"], manifest["media"]["files"]) == (failed, 0), task_id
    assert [entry for entry in emulator.request_log if entry.route == "media_file"], "the URLs were tried"
    assert not (tmp_path / "urls" / "media").exists()
