"""Fixtures for the file-batch tests: an ``xai`` connection with extras, DAG runs in a per-test folder."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from xai_test_support import TEST_API_KEY, run_dag_file


@pytest.fixture
def xai_conn(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """``xai_conn(**extra)``: point ``xai_default`` at the emulator, with this connection extra."""

    def configure(**extra: Any) -> str:
        connection = {"conn_type": "xai", "password": TEST_API_KEY, "host": emulator.url, "extra": extra}
        monkeypatch.setenv("AIRFLOW_CONN_XAI_DEFAULT", json.dumps(connection))
        return "xai_default"

    configure()
    return configure


@pytest.fixture
def run_dag(dags_folder: Path) -> Callable[..., Any]:
    """``run_dag(source, dag_id)``: write the DAG file into this test's DAG folder and ``dag.test()`` it."""

    def run(source: str, dag_id: str) -> Any:
        return run_dag_file(source, dag_id, dags_folder)

    return run
