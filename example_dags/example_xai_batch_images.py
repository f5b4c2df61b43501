"""Images and videos in one batch, stored beside the results before their URLs expire.

xAI's image and video results carry URLs that stop working one hour after generation. With
``output_path`` set, ``XAIBatchOperator`` stores every image and video under
``<output_path>/media/<batch_request_id>-<n>.<ext>`` (``media="download"``, the default) and each
row of ``succeeded.jsonl`` gains ``"media": [{"uri", "content_type", "bytes", "sha256"}]``. A
downstream task reads the stored files, not the expiring URLs.
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
IMAGE_MODEL = os.environ.get("XAI_BATCH_IMAGE_MODEL", "grok-imagine-image")
VIDEO_MODEL = os.environ.get("XAI_BATCH_VIDEO_MODEL", "grok-imagine-video")
POLL_SECONDS = float(os.environ.get("XAI_BATCH_POLL_SECONDS", "60"))
# At most one progress line (done/total, percent, rate, time left) per this many seconds.
PROGRESS_SECONDS = float(os.environ.get("XAI_BATCH_PROGRESS_SECONDS", "60"))

PRODUCTS = ["a red enamel teapot", "a walnut desk lamp", "a canvas weekend bag"]

with DAG(
    dag_id="example_xai_batch_images",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["xai", "batch", "example", "media"],
    user_defined_filters={"path_safe": path_safe},
    doc_md=__doc__,
) as dag:

    @task
    def build_requests() -> list[dict[str, Any]]:
        """Two product shots per product, one as base64 data, and a short clip of the first one."""
        requests: list[dict[str, Any]] = []
        for index, product in enumerate(PRODUCTS):
            requests.append(
                {
                    "custom_id": f"shot-{index:02d}",
                    "url": "/v1/images/generations",
                    "body": {"model": IMAGE_MODEL, "prompt": f"Studio photo of {product}", "n": 2},
                }
            )
        requests.append(
            {
                "custom_id": "thumb-00",
                "url": "/v1/images/generations",
                "body": {
                    "model": IMAGE_MODEL,
                    "prompt": f"Thumbnail of {PRODUCTS[0]}",
                    "response_format": "b64_json",
                },
            }
        )
        requests.append(
            {
                "custom_id": "clip-00",
                "url": "/v1/videos/generations",
                "body": {"model": VIDEO_MODEL, "prompt": f"A slow turn around {PRODUCTS[0]}"},
            }
        )
        return requests

    run_batch = XAIBatchOperator(
        task_id="run_batch",
        name="product-media-{{ (dag_run.logical_date or dag_run.run_after) | ds }}",
        requests=build_requests(),
        output_path=OUTPUT,
        media="download",
        deferrable=True,
        poll_interval=POLL_SECONDS,
        progress_interval=PROGRESS_SECONDS,
        timeout=26 * 3600,
    )

    @task
    def list_media(manifest: dict[str, Any]) -> dict[str, Any]:
        """Print where each stored image and video is; these copies do not expire."""
        stored: dict[str, list[str]] = {}
        with ObjectStoragePath(manifest["files"]["succeeded"]).open("r") as lines:
            # readline rather than plain iteration: Airflow 3.0's tracked file objects cannot iterate.
            for line in iter(lines.readline, ""):
                row = json.loads(line)
                stored[row["batch_request_id"]] = [item["uri"] for item in row.get("media", [])]
        media = manifest["media"]
        print(f"batch {manifest['batch_id']}: {media['files']} media files, {media['bytes']} bytes")
        for request_id, uris in sorted(stored.items()):
            print(f"  {request_id}: {', '.join(uris)}")
        return {"files": media["files"], "failed": media["failed"], "rows": len(stored)}

    list_media(run_batch.output)
