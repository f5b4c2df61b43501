"""Fixtures of the distributed tests: a PostgreSQL database and a Redis index of the test's own.

Everything here needs the CeleryExecutor's services and packages, which only the newest Airflow
leg installs, so every test in this folder is marked ``airflow_processes`` (the oldest leg
deselects that marker).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.distributed_services import PostgresDatabase, RedisIndex, postgres_database, redis_index

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.airflow_processes)


@pytest.fixture
def postgres() -> Iterator[PostgresDatabase]:
    """A fresh PostgreSQL database, dropped after the test."""
    with postgres_database() as database:
        yield database


@pytest.fixture
def redis_db() -> Iterator[RedisIndex]:
    """A Redis database index nobody else uses, flushed after the test."""
    with redis_index() as index:
        yield index
