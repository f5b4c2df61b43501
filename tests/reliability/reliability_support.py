"""Shared pieces of the reliability tests: request files, fault accounting, reading what landed."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from support.batch_requests import openai_style
from support.jsonl import write_jsonl

from airflow_provider_xai_batch.client.inputs import generated_request_id
from airflow_provider_xai_batch.emulator.faults import FaultDecision


def jsonl_request(request_id: str | None, text: str) -> dict[str, Any]:
    """One OpenAI-style JSONL line; without an id when ``request_id`` is None."""
    return openai_style(text, request_id)


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
