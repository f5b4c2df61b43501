"""Shared constants and builders for the emulator tests (a plain module: `conftest` is taken)."""

from __future__ import annotations

from typing import Any

from airflow_provider_xai_batch.emulator import EmulatorConfig, EmulatorServer

START = 1_788_000_000.0  # 2026-08-29 12:00 UTC
API_KEY = "test-key-5f1c0d"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def quiet_config() -> EmulatorConfig:
    # Rate limits are tested on their own; elsewhere they would only add noise.
    return EmulatorConfig(api_key=API_KEY, create_rate_limit=0, add_rate_limit=0)


def quiet_server(**knobs: Any) -> EmulatorServer:
    return EmulatorServer(api_key=API_KEY, **{"create_rate_limit": 0, "add_rate_limit": 0, **knobs})
