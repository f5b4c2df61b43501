"""Watch a batch created elsewhere (the xAI console, another system) and export its results.

Trigger with the batch id as a parameter, for example
``airflow dags trigger example_xai_batch_watch --conf '{"batch_id": "batch_..."}'``.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, Param

from airflow_provider_xai_batch.operators.results import XAIBatchResultsOperator
from airflow_provider_xai_batch.sensors.batch import XAIBatchSensor

# One folder per DAG and run: watching the same batch twice keeps both exports.
OUTPUT = os.environ.get("XAI_BATCH_OUTPUT", "file:///tmp/xai-batch-example/{{ dag.dag_id }}/{{ run_id }}")
POLL_SECONDS = float(os.environ.get("XAI_BATCH_POLL_SECONDS", "300"))

with DAG(
    dag_id="example_xai_batch_watch",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"batch_id": Param("batch_replace_me", type="string", description="The xAI batch to watch")},
    tags=["xai", "batch", "example"],
    doc_md=__doc__,
) as dag:
    wait = XAIBatchSensor(
        task_id="wait_for_batch",
        batch_id="{{ params.batch_id }}",
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=30 * 24 * 3600,
    )
    export = XAIBatchResultsOperator(
        task_id="export_results", batch_id="{{ params.batch_id }}", output_path=OUTPUT
    )
    wait >> export
