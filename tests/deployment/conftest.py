"""One real Airflow deployment on loopback for this folder's tests, with the examples and the emulator.

Started once (it takes the better part of a minute) and always stopped; a failing test's report
carries every process's log. The simple auth manager has two users (``admin`` and ``viewer``), so
the batches page's permissions are checked in the same deployment as the examples.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest
from deployment_support import (
    AUTH_ENV,
    EMULATOR_KEY,
    ERRORS_DAG,
    ERRORS_DAG_ID,
    EXAMPLES,
    HOLD_RATE,
    PASSWORDS,
    UI_DAG,
    UI_DAG_ID,
    Deployment,
    PasswordApi,
    token_of,
    write_inputs,
)

from benchmarks.airflow_deployment import AirflowDeployment, DeploymentSettings


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("deployment")
    write_inputs(root)
    passwords = root / "passwords.json"
    passwords.write_text(json.dumps(PASSWORDS))
    settings = DeploymentSettings(
        executor="LocalExecutor",
        parallelism=4,
        extra_env={**AUTH_ENV, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords)},
    )
    airflow = AirflowDeployment(root, settings)
    airflow.api = PasswordApi(airflow.base_url)
    try:
        for example in sorted(EXAMPLES.glob("example_*.py")):
            shutil.copy(example, airflow.dags_folder / example.name)
        (airflow.dags_folder / f"{ERRORS_DAG_ID}.py").write_text(ERRORS_DAG)
        (airflow.dags_folder / f"{UI_DAG_ID}.py").write_text(UI_DAG)
        emulator = airflow.start_emulator(EMULATOR_KEY, processing_rate=HOLD_RATE)
        airflow.env.update(
            {
                "AIRFLOW_CONN_XAI_DEFAULT": emulator.connection(),
                "AIRFLOW_CONN_XAI_WRONG_KEY": emulator.connection(api_key="xai-not-the-right-key"),
                "XAI_BATCH_INPUT": f"file://{root / 'input'}/*.jsonl",
                "XAI_BATCH_SHARDS": f"file://{root / 'shards'}/",
                "XAI_BATCH_OUTPUT": f"file://{root / 'results'}/{{{{ dag.dag_id }}}}/{{{{ run_id }}}}",
                "XAI_BATCH_POLL_SECONDS": "1",
                "XAI_UI_OUTPUT": f"file://{root / 'ui-results'}",
            }
        )
        airflow.start()
        tokens = {user: token_of(airflow.base_url, user) for user in PASSWORDS}
        yield Deployment(airflow, emulator, root / "results", tokens)
    finally:
        airflow.stop()
        leftovers = airflow.processes.leftovers()
        assert not leftovers, f"processes left running: {leftovers}"


# The examples' test counts on the scheduled run that unpausing the nightly example starts at once,
# held pending since the deployment began; the other tests release or hold the shared emulator's
# batches as they need, so it runs first whatever order the files are collected in.
FIRST = "test_every_example_runs_by_hand_and_survives_a_triggerer_crash"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not (item.name == FIRST and "deployment" in item.nodeid))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failing test that used the deployment shows every process's log in its report."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    running = getattr(item, "funcargs", {}).get("deployment")
    if report.failed and isinstance(running, Deployment):
        report.sections.append(("Airflow processes", running.airflow.failure_report()))
