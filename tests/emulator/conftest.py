"""Fixtures of the emulator's service tests: a service on a hand-driven clock, without rate limits."""

from __future__ import annotations

import pytest
from emulator_support import START, quiet_config

from airflow_provider_xai_batch.emulator import BatchService, EmulatorConfig, ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def config() -> EmulatorConfig:
    return quiet_config()


@pytest.fixture
def service(config: EmulatorConfig, clock: ManualClock) -> BatchService:
    return BatchService(config, clock)
