"""TaskFlow: an upstream task builds prompts, one task runs the whole batch, a downstream task reads it.

The prompts classify a small embedded set of product reviews. ``XAIBatchOperator`` creates the
batch, adds the requests, waits (deferring, so no worker slot is held) and writes
``succeeded.jsonl``, ``failed.jsonl`` and ``manifest.json`` under ``output_path``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pendulum
from airflow.sdk import DAG, ObjectStoragePath, task

from airflow_provider_xai_batch.operators.one_task import XAIBatchOperator
from airflow_provider_xai_batch.uris import example_root, path_safe

# One folder per DAG and run: runs never overwrite each other, whether scheduled or triggered by hand.
ROOT = example_root(os.environ)  # $XAI_BATCH_EXAMPLE_ROOT, else xai-batch-example in the Airflow home
OUTPUT = os.environ.get("XAI_BATCH_OUTPUT", ROOT + "/output/{{ dag.dag_id }}/{{ run_id | path_safe }}")
MODEL = os.environ.get("XAI_BATCH_MODEL", "grok-4.3")
POLL_SECONDS = float(os.environ.get("XAI_BATCH_POLL_SECONDS", "60"))
# At most one progress line (done/total, percent, rate, time left) per this many seconds.
PROGRESS_SECONDS = float(os.environ.get("XAI_BATCH_PROGRESS_SECONDS", "60"))

REVIEWS = [
    "Arrived a day early and works perfectly.",
    "The zipper broke after two uses.",
    "It is a phone case. It holds the phone.",
    "Best headphones I have owned, the noise cancelling is superb.",
    "Smells of plastic and the colour is nothing like the photos.",
    "Does what it says, nothing more.",
    "Customer service replaced it without a fuss, great experience.",
    "Stopped charging after a week.",
    "Fits as expected.",
    "Absolutely love it, bought a second one for my sister.",
    "The instructions were missing and assembly took hours.",
    "Decent value for the price.",
]

with DAG(
    dag_id="example_xai_batch_taskflow",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["xai", "batch", "example"],
    user_defined_filters={"path_safe": path_safe},
    doc_md=__doc__,
) as dag:

    @task
    def build_prompts() -> list[dict[str, Any]]:
        """One chat completion per review; ids tie each answer back to its review."""
        system = "Classify the review's sentiment. Answer with one word: positive, negative or neutral."
        return [
            {
                "custom_id": f"review-{index:03d}",
                "body": {
                    "model": MODEL,
                    "max_tokens": 5,
                    "messages": [{"role": "system", "content": system}, {"role": "user", "content": review}],
                },
            }
            for index, review in enumerate(REVIEWS)
        ]

    run_batch = XAIBatchOperator(
        task_id="run_batch",
        name="review-sentiment-{{ (dag_run.logical_date or dag_run.run_after) | ds }}",
        requests=build_prompts(),
        output_path=OUTPUT,
        deferrable=True,
        poll_interval=POLL_SECONDS,
        progress_interval=PROGRESS_SECONDS,
        timeout=26 * 3600,
    )

    @task
    def summarise(manifest: dict[str, Any]) -> dict[str, Any]:
        """Read the manifest and the succeeded file, and print what a reviewer would want to see."""
        answers: dict[str, str] = {}
        with ObjectStoragePath(manifest["files"]["succeeded"]).open("r") as lines:
            # readline rather than plain iteration: Airflow 3.0's tracked file objects cannot iterate.
            for line in iter(lines.readline, ""):
                row = json.loads(line)
                choices = row["response"].get("choices") or [{}]
                answers[row["batch_request_id"]] = (choices[0].get("message") or {}).get("content", "")
        print(f"batch {manifest['batch_id']}: {manifest['succeeded']} answered, {manifest['failed']} failed")
        for request_id in sorted(answers)[:5]:
            print(f"  {request_id}: {answers[request_id][:60]}")
        print(f"cost: {manifest['cost_usd_ticks'] / 1e10:.6f} USD")
        return {"answered": len(answers), "failed": manifest["failed"]}

    summarise(run_batch.output)
