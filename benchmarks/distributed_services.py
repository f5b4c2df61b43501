"""PostgreSQL and Redis for the distributed tests: a database and a Redis index of each test's own.

The machines this project runs on start PostgreSQL (127.0.0.1:5432, trust auth, user ``postgres``)
and Redis (127.0.0.1:6379). A test gets a fresh database (dropped afterwards, connections and all)
and a Redis database index nobody else is using (flushed afterwards). Where a service is missing
the test is skipped with the reason, unless ``XAI_BATCH_REQUIRE_SERVICES=1`` is set (CI sets it),
which turns the skip into a failure so CI can never pass by skipping.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

REQUIRE_SERVICES = "XAI_BATCH_REQUIRE_SERVICES"
POSTGRES_HOST = "127.0.0.1"
POSTGRES_PORT = 5432
POSTGRES_USER = "postgres"
REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
# Redis index 0 is the one people use by hand; tests claim one of the others.
REDIS_INDEXES = range(1, 16)
CLAIM_KEY = "xai-batch-test:claimed-by"
ABANDONED_AFTER_SECONDS = 3 * 3600


def services_required() -> bool:
    return os.environ.get(REQUIRE_SERVICES, "") not in ("", "0", "false", "False")


def unavailable(reason: str) -> None:
    """Skip the test with ``reason``, or fail it when the services are required."""
    if services_required():
        pytest.fail(f"{reason} ({REQUIRE_SERVICES} is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(f"{reason}; set {REQUIRE_SERVICES}=1 to make this a failure")


def require_port(service: str, host: str, port: int) -> None:
    try:
        with socket.create_connection((host, port), timeout=2.0):
            return
    except OSError as exc:
        unavailable(f"{service} is not reachable at {host}:{port} ({exc.strerror or exc})")


def require_module(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError:
        unavailable(f"the Python package {name!r} is missing (install the 'distributed' extra)")


@dataclass(frozen=True)
class PostgresDatabase:
    """A database of the test's own on the local PostgreSQL."""

    name: str
    host: str = POSTGRES_HOST
    port: int = POSTGRES_PORT
    user: str = POSTGRES_USER

    @property
    def sqlalchemy_url(self) -> str:
        """For ``[database] sql_alchemy_conn``: psycopg2, which Airflow's migrations use."""
        return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{self.name}"

    @property
    def celery_result_backend(self) -> str:
        # SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3, which is not installed.
        return f"db+postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{self.name}"

    def connect(self) -> Any:
        psycopg2 = require_module("psycopg2")
        return psycopg2.connect(host=self.host, port=self.port, user=self.user, dbname=self.name)

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return list(cursor.fetchall())
        finally:
            connection.close()


def _admin_connection(host: str, port: int) -> Any:
    psycopg2 = require_module("psycopg2")
    connection = psycopg2.connect(host=host, port=port, user=POSTGRES_USER, dbname="postgres")
    connection.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
    return connection


def database_exists(name: str, host: str = POSTGRES_HOST, port: int = POSTGRES_PORT) -> bool:
    connection = _admin_connection(host, port)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            return cursor.fetchone() is not None
    finally:
        connection.close()


@contextlib.contextmanager
def postgres_database(host: str = POSTGRES_HOST, port: int = POSTGRES_PORT) -> Iterator[PostgresDatabase]:
    """Create a uniquely named database; drop it afterwards, ending any connection left to it."""
    require_port("PostgreSQL", host, port)
    database = PostgresDatabase(name=f"xai_batch_test_{uuid.uuid4().hex[:12]}", host=host, port=port)
    connection = _admin_connection(host, port)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{database.name}"')
        yield database
    finally:
        with connection.cursor() as cursor:
            # A killed process can leave a connection open; FORCE ends it instead of failing the drop.
            cursor.execute(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')
        connection.close()


@dataclass(frozen=True)
class RedisIndex:
    """A Redis database index claimed by one test."""

    index: int
    host: str = REDIS_HOST
    port: int = REDIS_PORT

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/{self.index}"

    def client(self) -> Any:
        redis = require_module("redis")
        return redis.Redis(host=self.host, port=self.port, db=self.index)

    def dump(self) -> bytes:
        """Every key and value in this index, as bytes: what a leak check searches."""
        client = self.client()
        try:
            parts: list[bytes] = []
            for key in client.scan_iter(count=1000):
                parts.append(key)
                kind = client.type(key)
                if kind == b"string":
                    parts.append(client.get(key) or b"")
                elif kind == b"list":
                    parts.extend(client.lrange(key, 0, -1))
                elif kind == b"set":
                    parts.extend(client.smembers(key))
                elif kind == b"zset":
                    parts.extend(client.zrange(key, 0, -1))
                elif kind == b"hash":
                    for field, value in client.hgetall(key).items():
                        parts.extend((field, value))
            return b"\n".join(parts)
        finally:
            client.close()


def _release_if_abandoned(client: Any) -> None:
    # A run killed before its clean-up leaves its index claimed (and Celery's keys in it); after
    # a while nobody can still be using it.
    claim = client.get(CLAIM_KEY)
    if claim is None:
        return
    try:
        claimed_at = float(claim.decode().rpartition("@")[2])
    except ValueError:
        claimed_at = 0.0
    if time.time() - claimed_at > ABANDONED_AFTER_SECONDS:
        client.flushdb()


@contextlib.contextmanager
def redis_index(host: str = REDIS_HOST, port: int = REDIS_PORT) -> Iterator[RedisIndex]:
    """Claim an empty Redis index (a marker key set only if absent); flush it afterwards."""
    require_port("Redis", host, port)
    redis = require_module("redis")
    owner = f"{uuid.uuid4().hex}@{time.time():.0f}"
    for index in REDIS_INDEXES:
        client = redis.Redis(host=host, port=port, db=index)
        try:
            _release_if_abandoned(client)
            # Empty before the claim, and the claim ours: no other run is using this index.
            if client.dbsize() == 0 and client.set(CLAIM_KEY, owner, nx=True) and client.dbsize() == 1:
                break
        finally:
            client.close()
    else:
        unavailable(f"no free Redis database index among {REDIS_INDEXES.start}-{REDIS_INDEXES.stop - 1}")
    claimed = RedisIndex(index=index, host=host, port=port)
    try:
        yield claimed
    finally:
        client = claimed.client()
        try:
            client.flushdb()
        finally:
            client.close()
