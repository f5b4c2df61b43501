"""pytest fixtures to test DAGs that use this provider, against the emulator. Loaded automatically.

The provider registers this module as a pytest plugin (entry point ``pytest11``), so a project
that installs the provider has these fixtures in every test, with nothing to import:

``xai_emulator``
    A running emulator on 127.0.0.1 and a free port, fresh for each test, as an
    :class:`~airflow_provider_xai_batch.testing.XAIEmulator`: ``.url``, ``.faults.inject(...)``,
    ``.configure(...)``, ``.batches()``, ``.requests(batch_id)``, ``.received(route)``,
    ``.calls(route)``. It processes requests at once unless ``xai_emulator_settings`` says
    otherwise.
``xai_emulator_settings``
    The emulator's settings (any ``EmulatorConfig`` field); ``{}`` by default. Override it in a
    test module or ``conftest.py`` (``return {"processing_rate": 2, "error_rate": 0.1}``) or per
    test with ``@pytest.mark.parametrize("xai_emulator_settings", [...], indirect=True)``.
``xai_emulator_clock``
    Ask for it to run the emulator on a clock you move by hand (``xai_emulator.advance(60)``):
    nothing progresses until you do. It starts at the current time.
``xai_default_conn``
    Sets ``AIRFLOW_CONN_XAI_DEFAULT`` to the emulator for the test's duration; returns
    ``"xai_default"``.
``xai_airflow_db``
    A migrated Airflow metadata database for ``dag.test()`` (session-wide), for a project
    without its own. With ``xai_isolated_airflow = true`` in the pytest configuration, the
    plugin first points ``AIRFLOW_HOME`` at a temporary folder (SQLite, no example DAGs) and the
    DAG folder at the project's ``dags`` (``xai_dags_folder`` to change it), so tests never touch
    a real Airflow home.

The module imports neither Airflow nor anything that does until a fixture runs, so loading the
plugin changes nothing in a test run that does not use it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_xai_batch.testing import XAIEmulator

EMULATOR_API_KEY = "xai-emulator-test-key"
ISOLATION_OPTION = "xai_isolated_airflow"
DAGS_FOLDER_OPTION = "xai_dags_folder"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        ISOLATION_OPTION,
        "Run Airflow in a temporary AIRFLOW_HOME with SQLite (for xai_airflow_db)",
        type="bool",
        default=False,
    )
    parser.addini(
        DAGS_FOLDER_OPTION,
        "The DAG folder, relative to the rootdir, with xai_isolated_airflow (dag.test() reads DAGs from it)",
        default="dags",
    )


def pytest_configure(config: pytest.Config) -> None:
    # Airflow reads its configuration when first imported, so this happens before any test module
    # is collected. Only when asked: a project with its own Airflow test setup keeps it.
    if not config.getini(ISOLATION_OPTION):
        return
    home = Path(tempfile.mkdtemp(prefix="xai-airflow-home-"))
    os.environ["AIRFLOW_HOME"] = str(home)
    # Airflow 3.3's dag.test() loads the DAG from its bundle: the project's own DAG folder.
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(
        Path(config.rootpath) / str(config.getini(DAGS_FOLDER_OPTION))
    )
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home / 'airflow.db'}"


@pytest.fixture(scope="session")
def xai_airflow_db() -> str:
    """Migrate Airflow's metadata database once per test run; returns ``AIRFLOW_HOME``."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return os.environ.get("AIRFLOW_HOME", "")


@pytest.fixture
def xai_emulator_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings for ``xai_emulator`` (``EmulatorConfig`` fields); override or parametrize to change them."""
    return dict(getattr(request, "param", None) or {})


@pytest.fixture
def xai_emulator_clock() -> Any:
    """A manual clock for ``xai_emulator``, starting now; move it with ``xai_emulator.advance(seconds)``."""
    from airflow_provider_xai_batch.emulator import ManualClock

    return ManualClock(time.time())  # now: clients judge a batch's expiry by today's date


@pytest.fixture
def xai_emulator(
    request: pytest.FixtureRequest, xai_emulator_settings: dict[str, Any]
) -> Iterator[XAIEmulator]:
    """A fresh emulator on a loopback port for this test, stopped after it."""
    settings = dict(xai_emulator_settings)
    # No client-side pacing to wait for in a test, unless the settings ask for it.
    settings.setdefault("create_rate_limit", 0)
    settings.setdefault("add_rate_limit", 0)
    clock = (
        request.getfixturevalue("xai_emulator_clock")
        if "xai_emulator_clock" in request.fixturenames
        else None
    )
    emulator = XAIEmulator.start(api_key=EMULATOR_API_KEY, clock=clock, **settings)
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def xai_default_conn(xai_emulator: XAIEmulator, monkeypatch: pytest.MonkeyPatch) -> str:
    """``xai_default`` pointing at ``xai_emulator`` (``AIRFLOW_CONN_XAI_DEFAULT``); returns its id."""
    monkeypatch.setenv("AIRFLOW_CONN_XAI_DEFAULT", xai_emulator.connection_json())
    return "xai_default"
