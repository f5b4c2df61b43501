"""Shared fixtures: an isolated Airflow home, the emulator on a loopback socket, an ``xai`` connection.

Airflow reads its configuration at import, so the environment is set here, before any test module
imports Airflow.

Safe under pytest-xdist (``make test`` runs the in-process tests on several workers): each worker
process imports this file, so each gets an Airflow home and metadata database of its own; emulators
and the local S3 listen on ports the system picks; the distributed tests create uniquely named
PostgreSQL databases and claim Redis indexes atomically; environment changes go through
``monkeypatch``, so they stay inside the worker and the test that made them.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_HOME = Path(tempfile.mkdtemp(prefix="xai-batch-airflow-home-"))
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_HOME / "dags")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME / 'airflow.db'}"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "INFO"
os.environ.pop("XAI_API_KEY", None)
os.environ.pop("XAI_BASE_URL", None)

from support.constants import TEST_API_KEY
from support.dags import run_dag_file
from support.emulator import TickingClock, connection_env


@pytest.fixture(scope="session")
def airflow_db(xai_airflow_db: str) -> Path:
    """A migrated metadata database for ``dag.test()``: the test kit's own fixture, in this suite's home."""
    assert Path(xai_airflow_db) == _HOME, "the test kit migrated a different AIRFLOW_HOME"
    return _HOME


@pytest.fixture
def manual_clock() -> object:
    """Ask for this to drive the ``emulator`` fixture's time by hand: nothing progresses until advanced.

    It starts at the current time, because clients judge a batch's expiry by today's date.
    """
    from airflow_provider_xai_batch.emulator import ManualClock

    return ManualClock(time.time())


@pytest.fixture
def ticking_clock() -> object:
    """Ask for this to make the ``emulator`` fixture's clock move one second each time it is read.

    Processing then advances call by call, whatever the wall clock does: a wait sees the batch
    part-way however slowly the machine starts its tasks.
    """
    return TickingClock()


@pytest.fixture
def emulator(request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh emulator on 127.0.0.1 with a random port, processing instantly.

    Its clock is the wall clock, or ``manual_clock`` when the test asks for that fixture too.
    """
    from airflow_provider_xai_batch.emulator import EmulatorServer

    clock = None
    for name in ("manual_clock", "ticking_clock"):
        if name in request.fixturenames:
            clock = request.getfixturevalue(name)
    with EmulatorServer(api_key=TEST_API_KEY, clock=clock) as server:
        yield server


@pytest.fixture
def xai_connection(emulator: object, monkeypatch: pytest.MonkeyPatch) -> str:
    """``xai_default`` pointing at the emulator; returns the connection id."""
    monkeypatch.setenv("AIRFLOW_CONN_XAI_DEFAULT", connection_env(emulator, api_key=TEST_API_KEY))
    return "xai_default"


@pytest.fixture
def dags_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: Path) -> Path:
    """A DAG folder of this test's own, so each ``dag.test()`` parses only its own files."""
    import airflow.settings

    folder = tmp_path / "dags"
    folder.mkdir()
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(folder))
    # The default DAG bundle reads ``settings.DAGS_FOLDER``, fixed when Airflow was first imported.
    monkeypatch.setattr(airflow.settings, "DAGS_FOLDER", str(folder))
    return folder


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


@pytest.fixture
def run_dag(dags_folder: Path) -> Callable[..., Any]:
    """``run_dag(source, dag_id)``: ``run_dag_file`` in this test's own DAG folder (see ``dags_folder``)."""

    def run(source: str, dag_id: str, **test_kwargs: Any) -> Any:
        return run_dag_file(source, dag_id, dags_folder, **test_kwargs)

    return run


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A local S3 (moto's server over a real loopback socket) for the whole test run."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the local S3 and an ``aws_test`` Airflow connection to it; returns the bucket name."""
    import json
    import uuid

    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = f"xai-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_TEST",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
            }
        ),
    )
    return bucket
