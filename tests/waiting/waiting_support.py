"""Shared pieces of the waiting tests: batches seeded straight into the emulator, DAG files run."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from typing import Any

import httpx
from support.batch_requests import chat_rows, jsonl_line
from support.constants import MODEL
from support.dags import run_dag_file as run_dag
from support.emulator import connection_env

__all__ = [
    "MODEL",
    "EmulatorProcess",
    "chat_rows",
    "connection_env",
    "jsonl_line",
    "run_dag",
    "seed_batch",
    "seed_file_batch",
]


def seed_batch(emulator: Any, requests: int = 3, name: str = "waiting-test") -> str:
    """A batch holding ``requests`` chat requests, created in the emulator's state directly."""
    emulator.config.update({"create_rate_limit": 0, "add_rate_limit": 0})
    batch_id: str = emulator.service.create_batch(name)["batch_id"]
    if requests:
        emulator.service.add_requests(batch_id, chat_rows(requests))
    return batch_id


def seed_file_batch(emulator: Any, lines: list[str], name: str = "file-test") -> str:
    """A file batch from JSONL ``lines`` (each a raw line, so a test can make one invalid)."""
    emulator.config.update({"create_rate_limit": 0, "file_ingest_seconds": 0.1})
    content = ("\n".join(lines) + "\n").encode()
    file_id = emulator.service.upload_file("batch.jsonl", content)["id"]
    batch_id: str = emulator.service.create_batch(name, input_file_id=file_id)["batch_id"]
    return batch_id


class EmulatorProcess:
    """The emulator's CLI in a child process, so its work never competes with the test's own loop."""

    def __init__(self, api_key: str = "xai-waiting-key-0123", **flags: Any) -> None:
        self.api_key = api_key
        self.flags = {"create_rate_limit": 0, "add_rate_limit": 0, **flags}
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> EmulatorProcess:
        command = [sys.executable, "-m", "airflow_provider_xai_batch.emulator", "--port", "0"]
        command += ["--api-key", self.api_key]
        for name, value in self.flags.items():
            command += [f"--{name.replace('_', '-')}", str(value)]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self._process.stdout is not None
        deadline = time.monotonic() + 30
        seen: list[str] = []
        while time.monotonic() < deadline:
            line = self._process.stdout.readline()
            seen.append(line)
            if not line and self._process.poll() is not None:
                break
            match = re.search(r"listening on (http://\S+)", line)
            if match:
                self.url = match.group(1)
                return self
        self.__exit__(None, None, None)
        raise RuntimeError("the emulator process did not start: " + "".join(seen)[-2000:])

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
        if self._process is not None and self._process.stdout is not None:
            self._process.stdout.close()

    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=30
        )

    def configure(self, **changes: Any) -> None:
        with self.http() as client:
            client.patch("/_emulator/config", json=changes).raise_for_status()

    def calls(self, route: str) -> int:
        with self.http() as client:
            stats = client.get("/_emulator/stats").json()
        return int(stats["calls"].get(route, 0))

    def seed_batches(self, count: int, requests: int) -> list[str]:
        """``count`` inline batches of ``requests`` chat requests each."""
        ids = []
        with self.http() as client:
            for index in range(count):
                answer = client.post("/v1/batches", json={"name": f"seeded-{index}"})
                answer.raise_for_status()
                batch_id = answer.json()["batch_id"]
                added = client.post(
                    f"/v1/batches/{batch_id}/requests", json={"batch_requests": chat_rows(requests)}
                )
                added.raise_for_status()
                ids.append(batch_id)
        return ids
