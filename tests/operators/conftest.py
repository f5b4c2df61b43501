"""Fixtures for operator tests: DAG runs in a DAG folder Airflow actually reads, ``xai`` connections with extras."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.constants import TEST_API_KEY
from support.dags import run_dag_file
from support.emulator import connection_env


@pytest.fixture
def run_dag(dags_folder: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """``run_dag(source, dag_id)``: ``run_dag_file`` in this test's own DAG folder.

    Airflow reads ``settings.DAGS_FOLDER`` once, at import, and the DAG bundle ``dag.test()`` syncs
    (3.3) looks there, so it has to follow the per-test folder as well.
    """
    import airflow.settings

    monkeypatch.setattr(airflow.settings, "DAGS_FOLDER", str(dags_folder))

    def run(source: str, dag_id: str, **test_kwargs: Any) -> Any:
        return run_dag_file(source, dag_id, dags_folder, **test_kwargs)

    return run


@pytest.fixture
def xai_conn(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """``xai_conn(**extra)``: point ``xai_default`` at the emulator, with this connection extra."""

    def configure(**extra: Any) -> str:
        monkeypatch.setenv(
            "AIRFLOW_CONN_XAI_DEFAULT", connection_env(emulator, api_key=TEST_API_KEY, **extra)
        )
        return "xai_default"

    configure()
    return configure
