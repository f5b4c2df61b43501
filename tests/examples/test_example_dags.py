"""Every example DAG imports cleanly and runs end to end against the emulator.

The runs have no logical date, as runs triggered by hand from the UI, the CLI or the REST API have
in Airflow 3: templates must not depend on ``ds`` or ``logical_date`` alone.
"""

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
EXAMPLE_IDS = {
    "example_xai_batch_nightly",
    "example_xai_batch_taskflow",
    "example_xai_batch_fan_in",
    "example_xai_batch_watch",
    "example_xai_batch_images",
}
CHAT = {"model": "grok-4.3", "messages": [{"role": "user", "content": "Say hi"}]}
OUTPUT_TEMPLATE = "{{ dag.dag_id }}/{{ run_id }}"


def source_of(name: str) -> str:
    return (EXAMPLES / f"{name}.py").read_text()


def run_by_hand(name: str, dags_folder: Path, **kwargs: Any) -> Any:
    """Run an example as a manual trigger does: no logical date."""
    run = run_dag_file(source_of(name), name, dags_folder, logical_date=None, **kwargs)
    assert run.logical_date is None
    return run


def manifest_of(root: Path, run: Any) -> dict[str, Any]:
    """The manifest in the run's own output folder."""
    folder = root / run.dag_id / run.run_id
    return json.loads((folder / "manifest.json").read_text())


def load_examples() -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    return DagBag(dag_folder=str(EXAMPLES))


def test_every_example_imports_without_errors(airflow_db: Path) -> None:
    bag = load_examples()
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == EXAMPLE_IDS


def test_default_output_folders_differ_across_dags_and_runs(
    airflow_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XAI_BATCH_OUTPUT", raising=False)
    bag = load_examples()
    folders = set()
    for dag_id in EXAMPLE_IDS:
        dag = bag.get_dag(dag_id)
        export = (
            dag.get_task("export_results") if "export_results" in dag.task_ids else dag.get_task("run_batch")
        )
        for run_id in ("manual__2026-03-01T10:00:00+00:00", "scheduled__2026-03-01T00:00:00+00:00"):
            context = {"dag": dag, "run_id": run_id}
            folders.add(export.render_template(export.output_path, context))
    assert len(folders) == 2 * len(EXAMPLE_IDS), sorted(folders)
    # Named after the run in a form every tool takes, under the examples' root in the Airflow home.
    assert not any(":" in folder.split("://", 1)[1] or "+" in folder for folder in folders), sorted(folders)
    assert all("/xai-batch-example/output/" in folder for folder in folders), sorted(folders)


@pytest.fixture
def output_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, xai_connection: str) -> Path:
    monkeypatch.setenv("XAI_BATCH_POLL_SECONDS", "0.2")
    monkeypatch.setenv("XAI_BATCH_OUTPUT", f"file://{tmp_path / 'out'}/{OUTPUT_TEMPLATE}")
    return tmp_path / "out"


def test_nightly_files_to_results(
    output_root: Path,
    tmp_path: Path,
    dags_folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    emulator: EmulatorServer,
) -> None:
    for part in range(2):
        write_jsonl(
            tmp_path / "in" / f"part-{part}.jsonl",
            [{"custom_id": f"n{part}-{i}", "body": CHAT} for i in range(10)]
            + [{"body": CHAT | {"max_tokens": -1}}],
        )
    monkeypatch.setenv("XAI_BATCH_INPUT", f"file://{tmp_path / 'in'}/*.jsonl")
    run = run_by_hand("example_xai_batch_nightly", dags_folder)
    assert run.state == "success"
    manifest = manifest_of(output_root, run)
    assert (manifest["total"], manifest["succeeded"], manifest["failed"]) == (22, 20, 2)
    # With no logical date, the batch is named after the day the run was triggered.
    [batch] = emulator.service.list_batches()["batches"]
    assert batch["name"].startswith(f"nightly-{run.run_after:%Y-%m-%d}-"), batch["name"]


def test_taskflow_builds_runs_and_summarises(output_root: Path, dags_folder: Path) -> None:
    run = run_by_hand("example_xai_batch_taskflow", dags_folder)
    assert run.state == "success"
    manifest = manifest_of(output_root, run)
    assert manifest["succeeded"] == 12 and manifest["failed"] == 0


def test_fan_in_adds_every_shard_to_one_batch(
    output_root: Path,
    tmp_path: Path,
    dags_folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    emulator: EmulatorServer,
) -> None:
    for shard in range(4):  # no ids: derived from shard and line, so shards never collide
        write_jsonl(
            tmp_path / "shards" / f"shard-{shard}.jsonl",
            [{"body": CHAT | {"seed": shard * 100 + i}} for i in range(5)],
        )
    monkeypatch.setenv("XAI_BATCH_SHARDS", f"file://{tmp_path / 'shards'}/")
    run = run_by_hand("example_xai_batch_fan_in", dags_folder)
    assert run.state == "success"
    assert manifest_of(output_root, run)["succeeded"] == 20
    assert emulator.stats["service"]["batches"] == 1


def test_watch_exports_an_existing_batch(
    output_root: Path, dags_folder: Path, emulator: EmulatorServer
) -> None:
    from airflow_provider_xai_batch.hooks.xai import XAIBatchHook

    with closing(XAIBatchHook()) as hook:
        batch = hook.create_batch("made-elsewhere")
        hook.add_requests(batch.batch_id, [{"custom_id": f"w{i}", "body": CHAT} for i in range(3)])
    run = run_by_hand("example_xai_batch_watch", dags_folder, run_conf={"batch_id": batch.batch_id})
    assert run.state == "success"
    assert manifest_of(output_root, run)["batch_id"] == batch.batch_id


def test_a_scheduled_run_names_its_batch_after_its_logical_date(
    output_root: Path,
    tmp_path: Path,
    dags_folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    emulator: EmulatorServer,
) -> None:
    import pendulum

    write_jsonl(tmp_path / "in" / "part-0.jsonl", [{"custom_id": "s-0", "body": CHAT}])
    monkeypatch.setenv("XAI_BATCH_INPUT", f"file://{tmp_path / 'in'}/*.jsonl")
    day = pendulum.datetime(2026, 3, 1, tz="UTC")
    run = run_dag_file(
        source_of("example_xai_batch_nightly"), "example_xai_batch_nightly", dags_folder, logical_date=day
    )
    assert run.state == "success"
    names = [batch["name"] for batch in emulator.service.list_batches()["batches"]]
    assert len(names) == 1 and names[0].startswith("nightly-2026-03-01"), names
    assert manifest_of(output_root, run)["succeeded"] == 1


def test_images_example_stores_images_and_a_video_beside_the_results(
    output_root: Path, dags_folder: Path, emulator: EmulatorServer
) -> None:
    from support.media_files import check_mp4, decode_png

    run = run_by_hand("example_xai_batch_images", dags_folder)
    assert run.state == "success"
    manifest = manifest_of(output_root, run)
    # Three products with two shots each, one base64 thumbnail, one clip.
    assert (manifest["succeeded"], manifest["media"]["files"], manifest["media"]["failed"]) == (5, 8, 0)
    media = output_root / run.dag_id / run.run_id / "media"
    assert decode_png((media / "shot-02-1.png").read_bytes()) == (64, 64)
    assert decode_png((media / "thumb-00-0.png").read_bytes()) == (64, 64)
    assert check_mp4((media / "clip-00-0.mp4").read_bytes()) == 24
    assert sum(path.stat().st_size for path in media.iterdir()) == manifest["media"]["bytes"]
