"""Fan-in at scale: many input shards are added to one batch in parallel, then one wait and one export.

Dynamic task mapping runs one ``XAIAddBatchRequestsOperator`` per shard. Every request keeps a
deterministic id (its own, or one derived from shard and line), so a retried shard adds nothing
twice, and shards never collide with each other.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, ObjectStoragePath, task

from airflow_provider_xai_batch.operators.batch import XAIAddBatchRequestsOperator, XAICreateBatchOperator
from airflow_provider_xai_batch.operators.results import XAIBatchResultsOperator
from airflow_provider_xai_batch.sensors.batch import XAIBatchSensor
from airflow_provider_xai_batch.uris import example_root, path_safe

# One folder per DAG and run: runs never overwrite each other, whether scheduled or triggered by hand.
ROOT = example_root(os.environ)  # $XAI_BATCH_EXAMPLE_ROOT, else xai-batch-example in the Airflow home
SHARDS = os.environ.get("XAI_BATCH_SHARDS", ROOT + "/shards/")
OUTPUT = os.environ.get("XAI_BATCH_OUTPUT", ROOT + "/output/{{ dag.dag_id }}/{{ run_id | path_safe }}")
SOURCE_CONN_ID = os.environ.get("XAI_BATCH_SOURCE_CONN_ID") or None
POLL_SECONDS = float(os.environ.get("XAI_BATCH_POLL_SECONDS", "60"))
# At most one progress line (done/total, percent, rate, time left) per this many seconds.
PROGRESS_SECONDS = float(os.environ.get("XAI_BATCH_PROGRESS_SECONDS", "60"))

with DAG(
    dag_id="example_xai_batch_fan_in",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_tasks=8,
    tags=["xai", "batch", "example"],
    user_defined_filters={"path_safe": path_safe},
    doc_md=__doc__,
) as dag:

    @task
    def list_shards() -> list[str]:
        """Every ``.jsonl``/``.jsonl.gz`` file under the shard folder, in a stable order."""
        folder = ObjectStoragePath(SHARDS, conn_id=SOURCE_CONN_ID)
        return sorted(str(path) for path in folder.iterdir() if path.name.endswith((".jsonl", ".jsonl.gz")))

    shards = list_shards()

    # Every shard is validated before the batch exists: one bad shard stops the run here, with its
    # file and line, instead of failing one add task while the others fill the batch.
    create = XAICreateBatchOperator(
        task_id="create_batch",
        name="fan-in-{{ (dag_run.logical_date or dag_run.run_after) | ds }}",
        source=shards,
        source_conn_id=SOURCE_CONN_ID,
    )

    add = XAIAddBatchRequestsOperator.partial(
        task_id="add_shard", batch_id=create.output, source_conn_id=SOURCE_CONN_ID, retries=3
    ).expand(source=shards)

    wait = XAIBatchSensor(
        task_id="wait_for_batch",
        batch_id=create.output,
        deferrable=True,
        poke_interval=POLL_SECONDS,
        progress_interval=PROGRESS_SECONDS,
    )

    export = XAIBatchResultsOperator(
        task_id="export_results", batch_id=create.output, output_path=OUTPUT, output_conn_id=SOURCE_CONN_ID
    )

    create >> add >> wait >> export
