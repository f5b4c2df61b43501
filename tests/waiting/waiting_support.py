"""Shared pieces of the waiting tests: batches seeded into the emulator, in this process or another."""

from __future__ import annotations

from typing import Any

from support.batch_requests import chat_rows

from airflow_provider_xai_batch.emulator.process import EmulatorProcess


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


def seed_batches(emulator: EmulatorProcess, count: int, requests: int) -> list[str]:
    """``count`` inline batches of ``requests`` chat requests each."""
    ids = []
    with emulator.http() as client:
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
