"""The pytest plugin users test their DAGs with: the README's example, run as a user would.

The example's files are read from the README itself, written into a fresh directory outside the
repository, and tested there by a separate pytest run against the installed package.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_xai_batch.testing import XAIEmulator

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"<!-- test-your-dags:(?P<path>\S+) -->\n```\w*\n(?P<body>.*?)```", re.DOTALL)


def example_files() -> dict[str, str]:
    return {match["path"]: match["body"] for match in BLOCK.finditer(README.read_text())}


def test_the_readme_holds_a_whole_example() -> None:
    assert set(example_files()) == {"dags/summaries.py", "pytest.ini", "tests/test_summaries.py"}


@pytest.mark.slow
def test_the_readme_example_passes_in_a_fresh_project(tmp_path: Path) -> None:
    project = tmp_path / "my-dags"
    for relative, body in example_files().items():
        path = project / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    # The user's run knows nothing of this test run's Airflow settings.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "PYTEST"))}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "2 passed" in done.stdout


def test_the_fixtures_in_this_project_do_not_replace_its_own(
    xai_emulator: XAIEmulator, xai_default_conn: str
) -> None:
    # The plugin is loaded in this project's runs too; its fixtures are all named xai_emulator* / xai_default_conn.
    assert xai_default_conn == "xai_default"
    assert os.environ["AIRFLOW_CONN_XAI_DEFAULT"] == xai_emulator.connection_json()
    assert xai_emulator.batches() == []


@pytest.mark.parametrize("xai_emulator_settings", [{"processing_rate": 1.0}], indirect=True)
def test_the_manual_clock_drives_processing(xai_emulator: XAIEmulator, xai_emulator_clock: object) -> None:
    from airflow_provider_xai_batch.client import XAIBatchClient

    chat = {"model": "grok-4.3", "messages": [{"role": "user", "content": "hi"}]}
    with XAIBatchClient(xai_emulator.api_key, base_url=xai_emulator.url) as client:
        batch = client.create_batch("clocked")
        client.add_requests(batch.batch_id, [{"custom_id": f"r{i}", "body": chat} for i in range(4)])
        assert client.get_batch(batch.batch_id).state.num_pending == 4  # the clock has not moved
        xai_emulator.advance(2.5)
        assert client.get_batch(batch.batch_id).state.num_success == 2
    assert xai_emulator.request_ids(batch.batch_id) == ["r0", "r1", "r2", "r3"]
    assert [entry.route for entry in xai_emulator.received("add_requests")] == ["add_requests"]
