from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from airflow_provider_xai_batch.emulator.cli import main

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def running(*args: str, env_key: str | None = None) -> Iterator[subprocess.Popen[str]]:
    """The emulator CLI in a child process; killed if still running at the end, its pipes closed."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    env.pop("XAI_EMULATOR_API_KEY", None)
    if env_key is not None:
        env["XAI_EMULATOR_API_KEY"] = env_key
    with subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_xai_batch.emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()


def url_of(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    first = process.stdout.readline().strip()
    prefix = "xai-batch-emulator listening on "
    assert first.startswith(prefix), first
    return first[len(prefix) :]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_the_cli_serves_a_round_trip_and_stops_on_a_signal(stop_signal: int) -> None:
    with running("--api-key", "cli-key", "--processing-rate", "0", "--latency-ms", "1") as process:
        url = url_of(process)
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        with httpx.Client(base_url=url, headers={"Authorization": "Bearer cli-key"}, timeout=10) as client:
            batch_id = client.post("/v1/batches", json={"name": "cli"}).json()["batch_id"]
            body = {"model": "grok-4.3", "messages": [{"role": "user", "content": "ping"}]}
            added = client.post(
                f"/v1/batches/{batch_id}/requests",
                json={
                    "batch_requests": [
                        {"batch_request_id": "r1", "batch_request": {"chat_get_completion": body}}
                    ]
                },
            )
            assert added.json() == {}
            [result] = client.get(f"/v1/batches/{batch_id}/results").json()["results"]
            message = result["batch_result"]["response"]["chat_get_completion"]["choices"][0]["message"]
            assert message["content"] == "Emulated answer to: ping"
        process.send_signal(stop_signal)
        assert process.wait(timeout=10) == 0


def test_the_cli_takes_the_key_and_knobs_from_the_environment_and_flags() -> None:
    with running("--add-rate-limit", "1", "--supported-models", "grok-x", env_key="env-key") as process:
        url = url_of(process)
        auth = {"Authorization": "Bearer env-key"}
        config = httpx.get(f"{url}/_emulator/config", headers=auth).json()
        assert config["add_rate_limit"] == 1 and config["supported_models"] == ["grok-x"]
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_the_cli_refuses_to_start_without_a_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("XAI_EMULATOR_API_KEY", raising=False)
    assert main(["--port", "0"]) == 2
    assert "API key is required" in capsys.readouterr().err
    assert main(["--port", "0", "--api-key", "k", "--error-rate", "2"]) == 2
