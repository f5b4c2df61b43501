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
from airflow_provider_xai_batch.uris import example_root, path_safe

# One folder per DAG and run: watching the same batch twice keeps both exports.
ROOT = example_root(os.environ)  # $XAI_BATCH_EXAMPLE_ROOT, else xai-batch-example in the Airflow home
OUTPUT = os.environ.get("XAI_BATCH_OUTPUT", ROOT + "/output/{{ dag.dag_id }}/{{ run_id | path_safe }}")
POLL_SECONDS = float(os.environ.get("XAI_BATCH_POLL_SECONDS", "300"))
# At most one progress line (done/total, percent, rate, time left) per this many seconds.
PROGRESS_SECONDS = float(os.environ.get("XAI_BATCH_PROGRESS_SECONDS", "60"))

with DAG(
    dag_id="example_xai_batch_watch",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"batch_id": Param("batch_replace_me", type="string", description="The xAI batch to watch")},
    tags=["xai", "batch", "example"],
    user_defined_filters={"path_safe": path_safe},
    doc_md=__doc__,
) as dag:
    wait = XAIBatchSensor(
        task_id="wait_for_batch",
        batch_id="{{ params.batch_id }}",
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=30 * 24 * 3600,
        progress_interval=PROGRESS_SECONDS,
    )
    export = XAIBatchResultsOperator(
        task_id="export_results", batch_id="{{ params.batch_id }}", output_path=OUTPUT
    )
    wait >> export
