"""The distributed tests' own database and Redis index: fresh, usable, gone afterwards; absent services."""

from __future__ import annotations

import pytest

from airflow_provider_xai_batch.emulator.process import free_port
from benchmarks.distributed_services import (
    REQUIRE_SERVICES,
    PostgresDatabase,
    RedisIndex,
    database_exists,
    postgres_database,
    redis_index,
)


def test_own_database_is_usable_and_dropped_afterwards(postgres: PostgresDatabase) -> None:
    with postgres_database() as database:
        assert database.name != postgres.name  # two tests never share one
        assert database_exists(database.name)
        assert database.query("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]
        connection = database.connect()
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE leftover (id int)")
        connection.commit()
        # An open connection (as a killed process leaves) must not stop the clean-up.
    assert not database_exists(database.name)
    connection.close()


def test_result_backend_url_names_the_psycopg2_driver(postgres: PostgresDatabase) -> None:
    assert postgres.celery_result_backend.startswith("db+postgresql+psycopg2://")
    from sqlalchemy import create_engine, text

    engine = create_engine(postgres.celery_result_backend.removeprefix("db+"))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT current_database()")).scalar() == postgres.name
    engine.dispose()


def test_own_redis_index_is_empty_unshared_and_flushed_afterwards(redis_db: RedisIndex) -> None:
    client = redis_db.client()
    assert client.dbsize() == 1  # only the claim
    with redis_index() as other:
        assert other.index != redis_db.index
        other_client = other.client()
        other_client.set("job", "secret-free payload")
        assert b"secret-free payload" in other.dump()
    assert other_client.dbsize() == 0
    other_client.close()
    assert client.dbsize() == 1
    client.close()


def _closed_port() -> int:
    return free_port()


def test_missing_service_skips_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_SERVICES, raising=False)
    port = _closed_port()
    with pytest.raises(pytest.skip.Exception, match=f"PostgreSQL is not reachable at 127.0.0.1:{port}"):
        with postgres_database(port=port):
            pass
    with pytest.raises(pytest.skip.Exception, match=f"Redis is not reachable at 127.0.0.1:{port}"):
        with redis_index(port=port):
            pass


def test_missing_service_fails_when_services_are_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_SERVICES, "1")
    with pytest.raises(pytest.fail.Exception, match=f"{REQUIRE_SERVICES} is set"):
        with redis_index(port=_closed_port()):
            pass


def test_an_index_abandoned_by_a_killed_run_is_reclaimed(redis_db: RedisIndex) -> None:
    import redis

    from benchmarks.distributed_services import CLAIM_KEY, REDIS_INDEXES

    free = next(
        index for index in REDIS_INDEXES if index != redis_db.index and redis.Redis(db=index).dbsize() == 0
    )
    left_behind = redis.Redis(db=free)
    left_behind.set(CLAIM_KEY, "killed-run@1000")  # claimed long ago
    left_behind.set("_kombu.binding.default", "left by the killed run")
    with redis_index() as reclaimed:
        assert reclaimed.index == free
        assert left_behind.dbsize() == 1  # only the new claim
    assert left_behind.dbsize() == 0
    left_behind.close()
