"""Every example DAG imports cleanly and runs end to end against the emulator."""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from support.dags import run_dag_file
from support.jsonl import write_jsonl

from airflow_provider_xai_batch.emulator import EmulatorServer

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"
CHAT = {"model": "grok-4.3", "messages": [{"role": "user", "content": "Say hi"}]}


def source_of(name: str) -> str:
    return (EXAMPLES / f"{name}.py").read_text()


def manifest_at(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "manifest.json").read_text())


def test_every_example_imports_without_errors(airflow_db: Path) -> None:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    bag = DagBag(dag_folder=str(EXAMPLES))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {
        "example_xai_batch_nightly",
        "example_xai_batch_taskflow",
        "example_xai_batch_fan_in",
        "example_xai_batch_watch",
    }


@pytest.fixture
def example_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, xai_connection: str) -> Path:
    monkeypatch.setenv("XAI_BATCH_POLL_SECONDS", "0.2")
    monkeypatch.setenv("XAI_BATCH_OUTPUT", f"file://{tmp_path / 'out'}")
    return tmp_path


def test_nightly_files_to_results(
    example_env: Path, dags_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for part in range(2):
        write_jsonl(
            example_env / "in" / f"part-{part}.jsonl",
            [{"custom_id": f"n{part}-{i}", "body": CHAT} for i in range(10)]
            + [{"body": CHAT | {"max_tokens": -1}}],
        )
    monkeypatch.setenv("XAI_BATCH_INPUT", f"file://{example_env / 'in'}/*.jsonl")
    run = run_dag_file(source_of("example_xai_batch_nightly"), "example_xai_batch_nightly", dags_folder)
    assert run.state == "success"  # type: ignore[attr-defined]
    manifest = manifest_at(example_env / "out")
    assert (manifest["total"], manifest["succeeded"], manifest["failed"]) == (22, 20, 2)


def test_taskflow_builds_runs_and_summarises(example_env: Path, dags_folder: Path) -> None:
    run = run_dag_file(source_of("example_xai_batch_taskflow"), "example_xai_batch_taskflow", dags_folder)
    assert run.state == "success"  # type: ignore[attr-defined]
    manifest = manifest_at(example_env / "out")
    assert manifest["succeeded"] == 12 and manifest["failed"] == 0


def test_fan_in_adds_every_shard_to_one_batch(
    example_env: Path, dags_folder: Path, monkeypatch: pytest.MonkeyPatch, emulator: EmulatorServer
) -> None:
    for shard in range(4):  # no ids: derived from shard and line, so shards never collide
        write_jsonl(
            example_env / "shards" / f"shard-{shard}.jsonl",
            [{"body": CHAT | {"seed": shard * 100 + i}} for i in range(5)],
        )
    monkeypatch.setenv("XAI_BATCH_SHARDS", f"file://{example_env / 'shards'}/")
    run = run_dag_file(source_of("example_xai_batch_fan_in"), "example_xai_batch_fan_in", dags_folder)
    assert run.state == "success"  # type: ignore[attr-defined]
    assert manifest_at(example_env / "out")["succeeded"] == 20
    assert emulator.stats["service"]["batches"] == 1


def test_watch_exports_an_existing_batch(
    example_env: Path, dags_folder: Path, emulator: EmulatorServer
) -> None:
    from airflow_provider_xai_batch.hooks.xai import XAIBatchHook

    with closing(XAIBatchHook()) as hook:
        batch = hook.create_batch("made-elsewhere")
        hook.add_requests(batch.batch_id, [{"custom_id": f"w{i}", "body": CHAT} for i in range(3)])
    run = run_dag_file(
        source_of("example_xai_batch_watch"),
        "example_xai_batch_watch",
        dags_folder,
        run_conf={"batch_id": batch.batch_id},
    )
    assert run.state == "success"  # type: ignore[attr-defined]
    assert manifest_at(example_env / "out")["batch_id"] == batch.batch_id
