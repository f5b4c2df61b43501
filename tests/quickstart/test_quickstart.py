"""The README's quickstart, run as written: a fresh Airflow home, ``airflow standalone``, the emulator.

The fenced blocks that follow ``<!-- quickstart:NAME -->`` markers in README.md are run in order,
in the checkout, each by ``bash`` after the ``env`` block (as in the one shell the README asks
for). The only changes: the ports (8787, 8080) become free ones, and ``HOME`` is a temporary
folder, so ``~/airflow-xai`` lands there; and, as in every process test here, the workers wait
up to 60 s for the API server (``AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT``), because the test
machine is small and shared. The ``install`` block is not run (the suite's own
environment has the same pins); the test checks that it pins the Airflow version this suite runs.
Then it waits for the runs through the REST API and checks what the ``look`` block shows.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_xai_batch.emulator.process import free_port
from benchmarks.managed_processes import ManagedProcesses, wait_until

pytestmark = [pytest.mark.airflow_processes, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MARKER = re.compile(r"^\s*<!-- quickstart:(?P<name>[\w-]+) -->\s*$")
ORDER = ["install", "env", "start", "connect", "trigger", "look"]


def quickstart_blocks(text: str) -> dict[str, str]:
    """Each marked block's commands, dedented, by name, in README order."""
    blocks: dict[str, str] = {}
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = MARKER.match(line)
        if not match:
            continue
        fence = lines[index + 1]
        assert fence.strip() == "```bash", f"the quickstart:{match['name']} marker must precede a bash block"
        body = []
        for inner in lines[index + 2 :]:
            if inner.strip() == "```":
                break
            body.append(inner)
        blocks[match["name"]] = textwrap.dedent("\n".join(body))
    return blocks


def newest_airflow_only() -> Any:
    from airflow import __version__

    major, minor = (int(part) for part in __version__.split(".")[:2])
    return pytest.mark.skipif((major, minor) < (3, 3), reason="real processes run on the newest Airflow only")


def test_the_readme_holds_every_step_in_order() -> None:
    blocks = quickstart_blocks(README.read_text())
    assert list(blocks) == ORDER
    from airflow import __version__

    # The install step pins the Airflow this suite runs, with the constraints the suite installs.
    assert f"apache-airflow=={__version__}" in blocks["install"]
    assert "-c constraints/airflow-3.3.txt" in blocks["install"]


class Shell:
    """Runs README blocks as a user's shell would, with the ports swapped and HOME moved."""

    def __init__(self, tmp_path: Path, processes: ManagedProcesses) -> None:
        self.processes = processes
        self.home = tmp_path / "home"
        self.home.mkdir()
        self.emulator_port, self.api_port = free_port(), free_port()
        venv_bin = str(Path(sys.executable).parent)
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AIRFLOW", "XAI_", "PYTEST", "PYTHONPATH"))
        }
        self.env.update(
            {
                "HOME": str(self.home),
                "PATH": f"{venv_bin}{os.pathsep}{self.env.get('PATH', '')}",
                "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
            }
        )
        self.blocks = {
            name: self.ported(text) for name, text in quickstart_blocks(README.read_text()).items()
        }
        self.airflow_home = self.home / "airflow-xai"
        self.started: list[int] = []
        self.count = 0

    def ported(self, text: str) -> str:
        return text.replace("8787", str(self.emulator_port)).replace("8080", str(self.api_port))

    def run(self, name: str, timeout: float = 300) -> str:
        """Run one block after the env block; its output. Fails the test if the block fails."""
        self.count += 1
        script = f"set -euo pipefail\n{self.blocks['env']}\n{self.blocks[name]}\n"
        label = f"{self.count:02d}-{name}"
        process = self.processes.start(label, ["bash", "-c", script], env=self.env, cwd=ROOT)
        self.started.append(process.popen.pid)
        code = self.processes.wait(label, timeout)
        output = self.processes.log_text(label)
        if code != 0:
            raise AssertionError(
                f"quickstart step {name!r} exited with {code}:\n{output[-4000:]}\n{self.logs()}"
            )
        return output

    def logs(self) -> str:
        parts = []
        for name in ("standalone.log", "emulator.log"):
            path = self.airflow_home / name
            if path.exists():
                parts.append(f"----- {name} -----\n{path.read_text(errors='replace')[-6000:]}")
        return "\n".join(parts)

    def stop_background(self) -> None:
        """SIGTERM what the blocks left running in the background (their process groups), then sweep."""
        for pgid in self.started:
            try:
                os.killpg(pgid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.processes.leftovers():
            time.sleep(0.5)
        self.processes.sweep()


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    with ManagedProcesses(tmp_path / "logs") as processes:
        running = Shell(tmp_path, processes)
        try:
            yield running
        finally:
            running.stop_background()


def api_token(shell: Shell, client: httpx.Client) -> str:
    password = json.loads((shell.airflow_home / "simple_auth_manager_passwords.json.generated").read_text())
    answer = client.post("/auth/token", json={"username": "admin", "password": password["admin"]})
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def finished_runs(client: httpx.Client, dag_id: str) -> list[dict[str, Any]] | None:
    runs = client.get(f"/api/v2/dags/{dag_id}/dagRuns").json()["dag_runs"]
    if runs and all(run["state"] in ("success", "failed") for run in runs):
        return list(runs)
    return None


@newest_airflow_only()
@pytest.mark.timeout(1200)
def test_the_quickstart_as_written_ends_in_finished_runs(shell: Shell) -> None:
    shell.run("start")
    assert (shell.airflow_home / "xai-batch-example" / "input").is_dir()
    shell.run("connect")
    triggered = shell.run("trigger")
    assert '"state":"queued"' in triggered.replace(" ", "") or "queued" in triggered

    with httpx.Client(base_url=f"http://localhost:{shell.api_port}", timeout=60) as client:
        client.headers["Authorization"] = f"Bearer {api_token(shell, client)}"

        def all_done() -> dict[str, list[dict[str, Any]]] | None:
            taskflow = finished_runs(client, "example_xai_batch_taskflow")
            nightly = finished_runs(client, "example_xai_batch_nightly")
            # The nightly DAG has two: the scheduled run its unpausing started, and the REST one.
            if taskflow and nightly and len(nightly) == 2:
                return {"taskflow": taskflow, "nightly": nightly}
            return None

        runs = wait_until("the quickstart's runs to end", all_done, 600, on_timeout=shell.logs, interval=3)

    states = {
        name: sorted(run["run_type"] + ":" + run["state"] for run in group) for name, group in runs.items()
    }
    assert states == {
        "taskflow": ["manual:success"],
        "nightly": ["manual:success", "scheduled:success"],
    }, f"{states}\n{shell.logs()}"

    shown = shell.run("look")
    assert shown.count("success") >= 3, shown
    manifests = sorted((shell.airflow_home / "xai-batch-example" / "output").glob("*/*/manifest.json"))
    assert len(manifests) == 3, manifests
    for path in manifests:
        assert ":" not in path.parent.name and "+" not in path.parent.name
        assert path.parent.name in shown  # the listing shows every run's folder
    totals = sorted(json.loads(path.read_text())["total"] for path in manifests)
    assert totals == [12, 30, 30]
