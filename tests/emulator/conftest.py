from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_xai_batch.emulator import BatchService, EmulatorConfig, EmulatorServer, ManualClock

START = 1_788_000_000.0  # 2026-08-29 12:00 UTC
API_KEY = "test-key-5f1c0d"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def config() -> EmulatorConfig:
    # Rate limits are tested on their own; elsewhere they would only add noise.
    return EmulatorConfig(api_key=API_KEY, create_rate_limit=0, add_rate_limit=0)


@pytest.fixture
def service(config: EmulatorConfig, clock: ManualClock) -> BatchService:
    return BatchService(config, clock)


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(api_key=API_KEY, create_rate_limit=0, add_rate_limit=0) as server:
        yield server


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}
