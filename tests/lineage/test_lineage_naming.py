"""Dataset names and run figures (pure), and the provider without OpenLineage installed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from airflow_provider_xai_batch.client import Batch
from airflow_provider_xai_batch.lineage.facets import BatchFigures
from airflow_provider_xai_batch.lineage.naming import dataset_name


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("file:///data/in/a.jsonl", ("file", "/data/in/a.jsonl")),
        ("/data/in/a.jsonl", ("file", "/data/in/a.jsonl")),
        ("s3://prompts/2026/a.jsonl.gz", ("s3://prompts", "2026/a.jsonl.gz")),
        ("gs://bucket/results/manifest.json", ("gs://bucket", "results/manifest.json")),
        (
            "abfs://container@account.dfs.core.windows.net/out/x",
            ("abfs://container@account.dfs.core.windows.net", "out/x"),
        ),
    ],
)
def test_files_are_named_as_openlineage_names_them(uri: str, expected: tuple[str, str]) -> None:
    assert dataset_name(uri) == expected


def test_figures_come_from_the_manifest_with_cost_or_from_the_counters_without() -> None:
    manifest = {
        "batch_id": "b1",
        "status": "completed",
        "total": 5,
        "succeeded": 4,
        "failed": 1,
        "cancelled": 0,
        "cost_usd_ticks": 123_000_000,
    }
    assert BatchFigures.from_manifest(manifest) == BatchFigures("b1", "completed", 5, 4, 1, 0, 123_000_000)
    assert BatchFigures.from_manifest(manifest).cost_usd == pytest.approx(0.0123)
    batch = Batch.model_validate(
        {
            "batch_id": "b2",
            "state": {
                "num_requests": 6,
                "num_pending": 2,
                "num_success": 2,
                "num_error": 1,
                "num_cancelled": 1,
            },
        }
    )
    figures = BatchFigures.from_batch(batch)
    assert (figures.status, figures.total, figures.failed, figures.cost_usd) == ("processing", 6, 2, None)


def test_the_operators_import_and_build_without_openlineage() -> None:
    # Blocking the modules makes any import of them fail, as on a machine without them.
    code = """
import sys
for name in ("openlineage", "airflow.providers.openlineage.extractors", "airflow.providers.openlineage.plugins"):
    sys.modules[name] = None
from airflow_provider_xai_batch.operators.batch import XAIAddBatchRequestsOperator
from airflow_provider_xai_batch.operators.one_task import XAIBatchOperator
from airflow_provider_xai_batch.operators.results import XAIBatchResultsOperator
XAIBatchResultsOperator(task_id="export", batch_id="b", output_path="/tmp/out")
XAIBatchOperator(task_id="run", name="n", requests=[], output_path="/tmp/out")
loaded = (name for name, module in sys.modules.items() if module is not None)
print(sorted(name for name in loaded if name.split(".")[0] == "openlineage"))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
