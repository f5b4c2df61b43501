"""The README's way of reading a Parquet export, run as written against a real export."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

from support.constants import TEST_API_KEY

from airflow_provider_xai_batch.client import XAIBatchClient
from airflow_provider_xai_batch.results import export_results

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- example:read-parquet -->"
README_FOLDER = "/data/results/nightly"


def readme_example() -> str:
    """The fenced Python block right after the marker, as the README shows it."""
    after = README.read_text().split(MARKER, 1)[1]
    match = re.match(r"\s*```python\n(.*?)```", after, re.DOTALL)
    assert match is not None, f"no python block after {MARKER} in README.md"
    return match.group(1)


def requests(count: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {
            "custom_id": f"q{i:03d}",
            "body": {"model": "grok-4.3", "messages": [{"role": "user", "content": f"Q{i}"}]},
        }
        for i in range(count)
    ]
    rows[3]["body"]["max_tokens"] = -5  # fails for good
    return rows


def test_the_readme_reads_a_parquet_export_as_it_shows(emulator: Any, tmp_path: Path) -> None:
    with XAIBatchClient(TEST_API_KEY, base_url=emulator.url) as client:
        batch = client.create_batch("readme-parquet")
        client.add_requests(batch.batch_id, requests(25))
        manifest = export_results(client, batch.batch_id, str(tmp_path / "out"), output_format="parquet")
    code = readme_example()
    assert README_FOLDER in code
    namespace: dict[str, Any] = {}
    # Only what the example prints: Airflow 3.0 writes its own log lines to stdout too.
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code.replace(README_FOLDER, str(tmp_path / "out")), "README.md", "exec"), namespace)

    succeeded = namespace["succeeded"]
    assert succeeded.num_rows == manifest["succeeded"] == 24
    count, text = printed.getvalue().split(" ", 1)
    assert int(count) == 24 and text.startswith("Emulated answer to: Q0")
    assert namespace["cost_by_model"].to_pylist() == [
        {"model": "grok-4.3", "cost_usd_ticks_sum": manifest["cost_usd_ticks"]}
    ]
    assert manifest["cost_usd_ticks"] > 0
