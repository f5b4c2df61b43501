"""The emulator guards itself like the real service: the key is always required, loopback by default."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from typing import Any

import httpx
import psutil
import pytest
from support.constants import TEST_API_KEY

API_CALLS = [
    ("GET", "/v1/batches", None),
    ("POST", "/v1/batches", {"name": "x"}),
    ("GET", "/v1/batches/batch_1", None),
    ("POST", "/v1/batches/batch_1/requests", {"batch_requests": []}),
    ("GET", "/v1/batches/batch_1/results", None),
    ("POST", "/v1/batches/batch_1:cancel", {}),
    ("GET", "/v1/files", None),
]
CONTROL_CALLS = [
    ("GET", "/_emulator/stats", None),
    ("GET", "/_emulator/config", None),
    ("PATCH", "/_emulator/config", {"fault_rate": 1.0}),
    ("GET", "/_emulator/faults", None),
    ("POST", "/_emulator/faults", {"route": "*", "status": 500, "count": 100}),
    ("DELETE", "/_emulator/faults", None),
    ("POST", "/_emulator/reset", None),
    ("POST", "/_emulator/clock", {"advance": 86400 * 60}),
]
AUTH_HEADERS = {
    "no key": ({}, 401),
    "not bearer": ({"Authorization": f"Basic {TEST_API_KEY}"}, 401),
    "bearer without key": ({"Authorization": "Bearer"}, 401),
    "wrong key": ({"Authorization": "Bearer xai-wrong-key"}, 400),
    "key prefix": ({"Authorization": f"Bearer {TEST_API_KEY[:-1]}"}, 400),
}


@pytest.mark.parametrize("headers", list(AUTH_HEADERS))
@pytest.mark.parametrize(
    ("method", "path", "body"),
    API_CALLS + CONTROL_CALLS,
    ids=[f"{m} {p}" for m, p, _ in API_CALLS + CONTROL_CALLS],
)
def test_every_route_refuses_a_missing_or_wrong_key(
    emulator: Any, method: str, path: str, body: Any, headers: str
) -> None:
    batch_id = emulator.service.create_batch("kept")["batch_id"]
    sent, status = AUTH_HEADERS[headers]
    answer = httpx.request(method, emulator.url + path, json=body, headers=sent, timeout=10)

    assert answer.status_code == status
    message = answer.json()["error"]
    assert ("Incorrect API key provided" in message) == (status == 400)
    assert "xai-wrong-key" not in answer.text and TEST_API_KEY not in answer.text
    # Nothing changed behind the refusal: the batch is there, no fault is armed, settings kept.
    assert [batch["batch_id"] for batch in emulator.service.list_batches()["batches"]] == [batch_id]
    assert emulator.faults.pending() == [] and emulator.config.fault_rate == 0.0
    assert emulator.service.get_batch(batch_id)["cancel_time"] is None


def test_the_right_key_opens_the_control_routes(emulator: Any) -> None:
    auth = {"Authorization": f"Bearer {TEST_API_KEY}"}
    answer = httpx.patch(f"{emulator.url}/_emulator/config", json={"error_rate": 0.5}, headers=auth)
    assert answer.status_code == 200 and emulator.config.error_rate == 0.5
    assert "api_key" not in answer.json()  # the settings it shows leave the key out
    stats = httpx.get(f"{emulator.url}/_emulator/stats", headers=auth).json()
    assert TEST_API_KEY not in str(stats)


def listening_addresses(pid: int) -> set[str]:
    process = psutil.Process(pid)
    return {
        conn.laddr.ip for conn in process.net_connections(kind="inet") if conn.status == psutil.CONN_LISTEN
    }


def test_the_emulator_binds_loopback_by_default(emulator: Any) -> None:
    url = httpx.URL(emulator.url)
    assert url.host == "127.0.0.1"
    mine = {
        conn.laddr.ip
        for conn in psutil.Process(os.getpid()).net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == url.port
    }
    assert mine == {"127.0.0.1"}


def test_the_command_line_emulator_binds_loopback_and_requires_a_key() -> None:
    command = [sys.executable, "-m", "airflow_provider_xai_batch.emulator", "--port", "0"]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=60, env=_without_key_env())
    assert refused.returncode == 2 and "an API key is required" in refused.stderr

    process = subprocess.Popen([*command, "--api-key", TEST_API_KEY], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"listening on http://([\d.]+):(\d+)", line)
        assert match, line
        assert match.group(1) == "127.0.0.1"
        deadline = time.monotonic() + 10
        while not listening_addresses(process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert listening_addresses(process.pid) == {"127.0.0.1"}
        assert httpx.get(f"http://127.0.0.1:{match.group(2)}/v1/batches").status_code == 401
    finally:
        process.terminate()
        process.wait(10)
    assert process.returncode == 0  # stops cleanly on SIGTERM


def _without_key_env() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name != "XAI_EMULATOR_API_KEY"}
