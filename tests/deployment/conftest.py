"""One real Airflow deployment on loopback for this folder's tests, with the examples and the emulator.

Started once (it takes the better part of a minute) and always stopped; a failing test's report
carries every process's log.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from deployment_support import (
    EMULATOR_KEY,
    ERRORS_DAG,
    ERRORS_DAG_ID,
    EXAMPLES,
    HOLD_RATE,
    Deployment,
    write_inputs,
)

from benchmarks.airflow_deployment import AirflowDeployment, DeploymentSettings


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("deployment")
    write_inputs(root)
    airflow = AirflowDeployment(root, DeploymentSettings(executor="LocalExecutor", parallelism=4))
    try:
        for example in sorted(EXAMPLES.glob("example_*.py")):
            shutil.copy(example, airflow.dags_folder / example.name)
        (airflow.dags_folder / f"{ERRORS_DAG_ID}.py").write_text(ERRORS_DAG)
        emulator = airflow.start_emulator(EMULATOR_KEY, processing_rate=HOLD_RATE)
        airflow.env.update(
            {
                "AIRFLOW_CONN_XAI_DEFAULT": emulator.connection(),
                "AIRFLOW_CONN_XAI_WRONG_KEY": emulator.connection(api_key="xai-not-the-right-key"),
                "XAI_BATCH_INPUT": f"file://{root / 'input'}/*.jsonl",
                "XAI_BATCH_SHARDS": f"file://{root / 'shards'}/",
                "XAI_BATCH_OUTPUT": f"file://{root / 'results'}/{{{{ dag.dag_id }}}}/{{{{ run_id }}}}",
                "XAI_BATCH_POLL_SECONDS": "1",
            }
        )
        airflow.start()
        yield Deployment(airflow, emulator, root / "results")
    finally:
        airflow.stop()
        leftovers = airflow.processes.leftovers()
        assert not leftovers, f"processes left running: {leftovers}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failing test that used the deployment shows every process's log in its report."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    running = getattr(item, "funcargs", {}).get("deployment")
    if report.failed and isinstance(running, Deployment):
        report.sections.append(("Airflow processes", running.airflow.failure_report()))
