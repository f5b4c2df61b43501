"""Shared pieces of the reliability tests: request files, fault accounting, reading what landed."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from airflow_provider_xai_batch.client.inputs import generated_request_id
from airflow_provider_xai_batch.emulator.faults import FaultDecision

MODEL = "grok-4.3"


def chat_body(text: str) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}]}


def jsonl_request(request_id: str | None, text: str) -> dict[str, Any]:
    """One OpenAI-style JSONL line; without an id when ``request_id`` is None."""
    row: dict[str, Any] = {"method": "POST", "url": "/v1/chat/completions", "body": chat_body(text)}
    if request_id is not None:
        row["custom_id"] = request_id
    return row


def native_request(request_id: str, text: str) -> dict[str, Any]:
    return {"batch_request_id": request_id, "batch_request": {"chat_get_completion": chat_body(text)}}


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]], *, compress: bool = False) -> Path:
    data = "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, compresslevel=1) if compress else data)
    return path


def write_shards(folder: Path, total: int, shards: int) -> list[str]:
    """``total`` requests in ``shards`` JSONL files; return every request id, in file order.

    The last shard is gzip-compressed and its lines carry no id, so the ids derived from file and
    line are exercised too.
    """
    ids: list[str] = []
    per_shard = -(-total // shards)
    for shard in range(shards):
        start, stop = shard * per_shard, min(total, (shard + 1) * per_shard)
        last = shard == shards - 1
        name = f"part-{shard:02d}.jsonl" + (".gz" if last else "")
        path = folder / name
        rows = []
        for index in range(start, stop):
            request_id = None if last else f"req-{index:06d}"
            # A few prompts carry the emulator's failure marker, so failed.jsonl has rows too.
            text = f"question {index}" + (" [[fail]]" if index % 97 == 0 else "")
            rows.append(jsonl_request(request_id, text))
        write_jsonl(path, rows, compress=last)
        uri = "file://" + str(path.resolve())
        for line, row in enumerate(rows, start=1):
            ids.append(row.get("custom_id") or generated_request_id(uri, f"line {line}"))
    return ids


def fault_kind(decision: FaultDecision) -> str:
    if decision.drop == "before":
        return "drop_before"
    if decision.drop == "after":
        return "drop_after"
    if decision.status is not None:
        return str(decision.status)
    return "slow"


class FaultLedger:
    """Counts every fault the emulator decides on, by kind and by route, as it happens."""

    def __init__(self, emulator: Any) -> None:
        self.by_kind: Counter[str] = Counter()
        self.by_route: Counter[tuple[str, str]] = Counter()
        self.scripted = 0
        decide = emulator.faults.decide

        def recording(route: str) -> FaultDecision | None:
            decision = decide(route)
            if decision is not None:
                kind = fault_kind(decision)
                self.by_kind[kind] += 1
                self.by_route[(route, kind)] += 1
                self.scripted += int(decision.injected)
            return decision

        emulator.faults.decide = recording

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())


def held_request_ids(emulator: Any, batch_id: str) -> list[str]:
    """Every request id the emulator holds for a batch, in submission order."""
    ids: list[str] = []
    token = None
    while True:
        page = emulator.service.list_batch_requests(batch_id, limit=1000, token=token)
        ids.extend(row["batch_request_id"] for row in page["batch_request_metadata"])
        token = page.get("pagination_token")
        if not token:
            return ids


def jsonl_rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def task_states(run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def task_tries(run: Any) -> dict[str, int]:
    return {ti.task_id: int(ti.try_number) for ti in run.get_task_instances()}
