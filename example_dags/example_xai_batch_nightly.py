"""Nightly: JSONL files in object storage -> one batch -> deferrable wait -> results and a manifest.

Point ``XAI_BATCH_INPUT`` at your prompts (a glob in any object storage Airflow reads, for example
``s3://my-bucket/prompts/{{ (dag_run.logical_date or dag_run.run_after) | ds }}/*.jsonl`` with
``XAI_BATCH_SOURCE_CONN_ID=aws_default``) and
``XAI_BATCH_OUTPUT`` at the folder for the results (default: one folder per DAG and run under
``xai-batch-example`` in the Airflow home, or ``XAI_BATCH_EXAMPLE_ROOT``). The defaults use local files so the example runs anywhere, against the
local emulator or the real service, scheduled or triggered by hand (no logical date).
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_xai_batch.operators.batch import XAIAddBatchRequestsOperator, XAICreateBatchOperator
from airflow_provider_xai_batch.operators.results import XAIBatchResultsOperator
from airflow_provider_xai_batch.sensors.batch import XAIBatchSensor
from airflow_provider_xai_batch.uris import example_root, path_safe

# One folder per DAG and run: runs never overwrite each other, whether scheduled or triggered by hand.
ROOT = example_root(os.environ)  # $XAI_BATCH_EXAMPLE_ROOT, else xai-batch-example in the Airflow home
INPUT = os.environ.get("XAI_BATCH_INPUT", ROOT + "/input/*.jsonl")
OUTPUT = os.environ.get("XAI_BATCH_OUTPUT", ROOT + "/output/{{ dag.dag_id }}/{{ run_id | path_safe }}")
SOURCE_CONN_ID = os.environ.get("XAI_BATCH_SOURCE_CONN_ID") or None
POLL_SECONDS = float(os.environ.get("XAI_BATCH_POLL_SECONDS", "60"))
# At most one progress line (done/total, percent, rate, time left) per this many seconds.
PROGRESS_SECONDS = float(os.environ.get("XAI_BATCH_PROGRESS_SECONDS", "60"))

with DAG(
    dag_id="example_xai_batch_nightly",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["xai", "batch", "example"],
    user_defined_filters={"path_safe": path_safe},
    doc_md=__doc__,
) as dag:
    # The create task validates the input the add task will send: a bad line fails here, before
    # any batch exists, naming the file and line.
    create = XAICreateBatchOperator(
        task_id="create_batch",
        name="nightly-{{ (dag_run.logical_date or dag_run.run_after) | ds }}",
        source=INPUT,
        source_conn_id=SOURCE_CONN_ID,
    )

    add = XAIAddBatchRequestsOperator(
        task_id="add_requests",
        batch_id=create.output,
        source=INPUT,
        source_conn_id=SOURCE_CONN_ID,
        retries=3,
    )

    wait = XAIBatchSensor(
        task_id="wait_for_batch",
        batch_id=create.output,
        deferrable=True,  # the worker slot is released while xAI works
        poke_interval=POLL_SECONDS,
        timeout=26 * 3600,
        progress_interval=PROGRESS_SECONDS,
    )

    results = XAIBatchResultsOperator(
        task_id="export_results",
        batch_id=create.output,
        output_path=OUTPUT,
        output_conn_id=SOURCE_CONN_ID,
    )

    create >> add >> wait >> results
