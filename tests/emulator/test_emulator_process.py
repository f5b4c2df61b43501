"""The emulator's CLI as a child process: started on a free port, answering, stopped with nothing left open."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import psutil
import pytest

from airflow_provider_xai_batch.emulator.process import EmulatorProcess, free_port

KEY = "xai-process-key-0123"


def test_it_listens_answers_and_stops_cleanly(tmp_path: Path) -> None:
    log = tmp_path / "emulator.log"
    with EmulatorProcess(KEY, log_path=log, processing_rate=0, create_rate_limit=0) as emulator:
        assert emulator.running()
        assert httpx.URL(emulator.url).host == "127.0.0.1"
        with emulator.http() as client:
            client.post("/v1/batches", json={"name": "one"}).raise_for_status()
        assert emulator.calls("create_batch") == 1
        assert len(emulator.get("/v1/batches")["batches"]) == 1
        emulator.configure(latency_ms=1)
        assert emulator.get("/_emulator/config")["latency_ms"] == 1
        connection = json.loads(emulator.connection(api_key="other", add_calls=5))
        assert connection == {
            "conn_type": "xai",
            "password": "other",
            "host": emulator.url,
            "extra": {"add_calls": 5},
        }
        pid = emulator.pid
    assert emulator.returncode == 0  # SIGTERM: a clean stop
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert "listening on " + emulator.url in log.read_text()


def test_a_child_that_cannot_start_is_reported_with_its_output() -> None:
    emulator = EmulatorProcess(KEY, processing_rate="fast")
    with pytest.raises(RuntimeError, match="invalid float value: 'fast'"):
        emulator.start()
    assert emulator.returncode == 2


def test_flags_become_cli_options_and_none_leaves_one_out() -> None:
    command = EmulatorProcess(KEY, host=None, add_rate_window=3.0, seed=None, args=["--seed", "7"]).command()
    assert "--host" not in command  # the CLI's own default host
    assert command[command.index("--add-rate-window") + 1] == "3.0"
    assert command.count("--seed") == 1 and command[-2:] == ["--seed", "7"]
    assert command[command.index("--port") + 1] == "0"  # the child binds a free port itself


def test_free_port_is_free() -> None:
    port = free_port()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))
