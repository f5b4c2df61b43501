"""Exporting results through the emulator over loopback: local folders, S3, cancels, partial runs, crashes."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_xai_batch.client import Batch, XAIBatchClient
from airflow_provider_xai_batch.emulator import EmulatorServer, ManualClock
from airflow_provider_xai_batch.results import BatchNotFinishedError, export_results
from airflow_provider_xai_batch.results import staging as staging_module

API_KEY = "results-test-key-42"
BIG = 50_000
FINAL_NAMES = {"succeeded.jsonl", "failed.jsonl", "manifest.json"}


def chat_requests(count: int, *, prefix: str = "row") -> Iterator[dict[str, Any]]:
    """Mixed requests: every 97th carries the emulator's failure marker, every 101st max_tokens <= 0."""
    for number in range(count):
        content = f"question {number}"
        if number % 97 == 3:
            content += " [[fail]]"
        body: dict[str, Any] = {"model": "grok-4.3", "messages": [{"role": "user", "content": content}]}
        if number % 101 == 5:
            body["max_tokens"] = 0
        yield {"custom_id": f"{prefix}-{number:06d}", "body": body}


def bound_to_fail(number: int) -> str | None:
    if number % 101 == 5:
        return "max_tokens must be positive"
    if number % 97 == 3:
        return "[[fail]]"
    return None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def folder_names(path: Path) -> set[str]:
    return {entry.name for entry in path.iterdir()}


def fail_after_two_pages(client: XAIBatchClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """The connection to xAI dies after two pages of results."""
    real_pages = client.iter_result_page_bodies

    def two_pages_then_die(batch_id: str, *, page_size: int = 1000) -> Iterator[bytes]:
        pages = real_pages(batch_id, page_size=page_size)
        yield next(pages)
        yield next(pages)
        raise ConnectionError("network gone")

    monkeypatch.setattr(client, "iter_result_page_bodies", two_pages_then_die)


@pytest.fixture(scope="module")
def mixed_emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(api_key=API_KEY, error_rate=0.1, create_rate_limit=0, add_rate_limit=0) as server:
        yield server


@pytest.fixture(scope="module")
def mixed_client(mixed_emulator: EmulatorServer) -> Iterator[XAIBatchClient]:
    with XAIBatchClient(API_KEY, base_url=mixed_emulator.url) as client:
        yield client


@pytest.fixture(scope="module")
def big_batch(mixed_client: XAIBatchClient) -> Batch:
    """50,000 requests, finished at once: about 10 % fail at random, some by construction."""
    batch = mixed_client.create_batch("results-export-50k")
    assert mixed_client.add_requests(batch.batch_id, chat_requests(BIG)) == BIG
    return mixed_client.get_batch(batch.batch_id)


@pytest.fixture(scope="module")
def big_export(
    big_batch: Batch, mixed_client: XAIBatchClient, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("big") / "out"
    manifest = export_results(mixed_client, big_batch.batch_id, f"file://{folder}")
    return folder, manifest


def test_50k_mixed_results_land_once_each_with_counts_matching_the_batch(
    big_batch: Batch, big_export: tuple[Path, dict[str, Any]]
) -> None:
    folder, manifest = big_export
    succeeded = read_jsonl(folder / "succeeded.jsonl")
    failed = read_jsonl(folder / "failed.jsonl")
    state = big_batch.state

    ids = [row["batch_request_id"] for row in succeeded] + [row["batch_request_id"] for row in failed]
    assert len(ids) == BIG
    assert set(ids) == {f"row-{number:06d}" for number in range(BIG)}
    assert [row["batch_request_id"] for row in succeeded] == sorted(
        row["batch_request_id"] for row in succeeded
    )

    assert len(succeeded) == state.num_success and len(failed) == state.num_error
    # Random failures on top of the ones built in, so both kinds are really there.
    built_in = sum(1 for number in range(BIG) if bound_to_fail(number))
    assert state.num_error > built_in > 0

    errors = {row["batch_request_id"]: row["error"] for row in failed}
    for number in range(0, BIG, 7):
        expected = bound_to_fail(number)
        if expected:
            assert expected in errors[f"row-{number:06d}"]
    assert all(set(row) == {"batch_request_id", "error"} for row in failed)
    first = succeeded[0]
    assert set(first) == {"batch_request_id", "kind", "response"}
    assert first["kind"] == "chat_get_completion"
    assert first["response"]["choices"][0]["message"]["content"].startswith("Emulated answer to: question")

    assert manifest["batch_id"] == big_batch.batch_id
    assert (manifest["total"], manifest["succeeded"], manifest["failed"], manifest["cancelled"]) == (
        BIG,
        state.num_success,
        state.num_error,
        0,
    )
    assert manifest["cost_usd_ticks"] == sum(
        row["response"]["usage"]["cost_in_usd_ticks"] for row in succeeded
    )
    assert manifest["cost_usd_ticks"] > 0
    assert manifest["files"] == {
        "succeeded": f"file://{folder}/succeeded.jsonl",
        "failed": f"file://{folder}/failed.jsonl",
    }
    assert manifest["status"] == "completed"
    assert manifest["partial"] is False and manifest["reconciled"] is True and manifest["notes"] == []
    assert json.loads((folder / "manifest.json").read_text()) == manifest
    assert folder_names(folder) == FINAL_NAMES


def test_rerun_rewrites_identical_bytes_and_clears_leftovers(
    big_batch: Batch, big_export: tuple[Path, dict[str, Any]], mixed_client: XAIBatchClient
) -> None:
    folder, first_manifest = big_export
    before = {name: (folder / name).read_bytes() for name in ("succeeded.jsonl", "failed.jsonl")}
    # What a worker killed mid-export leaves behind.
    (folder / ".succeeded.jsonl.0123456789ab.tmp").write_bytes(b'{"half": ')
    (folder / ".manifest.json.ba9876543210.tmp").write_bytes(b"{")

    manifest = export_results(mixed_client, big_batch.batch_id, str(folder))

    assert folder_names(folder) == FINAL_NAMES
    for name, content in before.items():
        assert (folder / name).read_bytes() == content
    assert manifest["file_details"] == first_manifest["file_details"]
    assert manifest["files"] == first_manifest["files"]  # a plain path is the same folder as file://


def test_s3_export_holds_the_same_bytes_as_a_local_one(
    big_batch: Batch,
    big_export: tuple[Path, dict[str, Any]],
    mixed_client: XAIBatchClient,
    s3_bucket: str,
    s3_endpoint: str,
) -> None:
    import boto3

    local_folder, local_manifest = big_export
    manifest = export_results(
        mixed_client, big_batch.batch_id, f"s3://{s3_bucket}/exports/nightly", output_conn_id="aws_test"
    )

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    listed = s3.list_objects_v2(Bucket=s3_bucket, Prefix="exports/nightly/")
    assert {item["Key"] for item in listed["Contents"]} == {f"exports/nightly/{name}" for name in FINAL_NAMES}
    for name in ("succeeded.jsonl", "failed.jsonl"):
        body = s3.get_object(Bucket=s3_bucket, Key=f"exports/nightly/{name}")["Body"].read()
        assert body == (local_folder / name).read_bytes()
    assert manifest["files"] == {
        "succeeded": f"s3://{s3_bucket}/exports/nightly/succeeded.jsonl",
        "failed": f"s3://{s3_bucket}/exports/nightly/failed.jsonl",
    }
    assert manifest["file_details"] == local_manifest["file_details"]
    stored = json.loads(s3.get_object(Bucket=s3_bucket, Key="exports/nightly/manifest.json")["Body"].read())
    assert stored == manifest


def test_crash_between_files_leaves_no_partial_file_and_a_rerun_recovers(
    mixed_emulator: EmulatorServer,
    mixed_client: XAIBatchClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batch = mixed_client.create_batch("results-crash")
    mixed_client.add_requests(batch.batch_id, chat_requests(3000))
    reference = export_results(mixed_client, batch.batch_id, tmp_path / "reference")
    folder = tmp_path / "out"
    export_results(mixed_client, batch.batch_id, folder)  # an earlier, complete export

    real_move = staging_module._move
    moves: list[str] = []

    def move_then_die(fs: Any, source: str, target: str) -> None:
        moves.append(target.rsplit("/", 1)[-1])
        if len(moves) == 2:
            raise OSError("worker lost its storage mid-export")
        real_move(fs, source, target)

    monkeypatch.setattr(staging_module, "_move", move_then_die)
    with pytest.raises(OSError, match="mid-export"):
        export_results(mixed_client, batch.batch_id, folder)

    # The old manifest is gone, so nothing vouches for a mix of files; no staging file stays.
    assert moves == ["succeeded.jsonl", "failed.jsonl"]
    assert folder_names(folder) == {"succeeded.jsonl", "failed.jsonl"}
    monkeypatch.setattr(staging_module, "_move", real_move)

    manifest = export_results(mixed_client, batch.batch_id, folder)
    assert folder_names(folder) == FINAL_NAMES
    for name in ("succeeded.jsonl", "failed.jsonl"):
        assert (folder / name).read_bytes() == (tmp_path / "reference" / name).read_bytes()
    assert manifest["file_details"] == reference["file_details"]


def test_failure_while_streaming_publishes_nothing(
    mixed_emulator: EmulatorServer,
    mixed_client: XAIBatchClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batch = mixed_client.create_batch("results-stream-failure")
    mixed_client.add_requests(batch.batch_id, chat_requests(2500))
    fail_after_two_pages(mixed_client, monkeypatch)
    with pytest.raises(ConnectionError):
        export_results(mixed_client, batch.batch_id, tmp_path / "out")
    assert folder_names(tmp_path / "out") == set()


def test_failure_while_streaming_to_s3_leaves_no_object(
    mixed_client: XAIBatchClient, s3_bucket: str, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    batch = mixed_client.create_batch("results-stream-failure-s3")
    mixed_client.add_requests(batch.batch_id, chat_requests(2500))
    fail_after_two_pages(mixed_client, monkeypatch)
    with pytest.raises(ConnectionError):
        export_results(mixed_client, batch.batch_id, f"s3://{s3_bucket}/out", output_conn_id="aws_test")

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    assert s3.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0
    assert s3.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_transient_errors_while_paging_do_not_change_the_output(
    mixed_emulator: EmulatorServer, mixed_client: XAIBatchClient, tmp_path: Path
) -> None:
    batch = mixed_client.create_batch("results-flaky")
    mixed_client.add_requests(batch.batch_id, chat_requests(2500))
    clean = export_results(mixed_client, batch.batch_id, tmp_path / "clean")
    mixed_emulator.faults.inject("list_results", status=503, count=2)
    flaky = export_results(mixed_client, batch.batch_id, tmp_path / "flaky")
    assert mixed_emulator.answers(503, "list_results") == 2
    assert flaky["file_details"] == clean["file_details"]


def test_cancelled_batch_exports_cancelled_requests_as_failures(tmp_path: Path) -> None:
    # The emulator's clock moves only when told to (from today: the client judges expiry by date).
    with (
        EmulatorServer(
            api_key=API_KEY,
            clock=(clock := ManualClock(time.time())),
            processing_rate=1000,
            error_rate=0.1,
            create_rate_limit=0,
            add_rate_limit=0,
        ) as emulator,
        XAIBatchClient(API_KEY, base_url=emulator.url) as client,
    ):
        batch = client.create_batch("results-cancelled")
        client.add_requests(batch.batch_id, chat_requests(5000))
        clock.advance(0.3)  # about 300 requests done, the rest still pending
        cancelled = client.cancel_batch(batch.batch_id)
        manifest = export_results(client, batch.batch_id, tmp_path)

    state = cancelled.state
    assert state.num_cancelled > 0 and state.num_success > 0
    failed = read_jsonl(tmp_path / "failed.jsonl")
    succeeded = read_jsonl(tmp_path / "succeeded.jsonl")
    cancelled_rows = [row for row in failed if row["error"] == "Batch cancelled"]
    assert len(cancelled_rows) == state.num_cancelled == manifest["cancelled"]
    assert manifest["failed"] == len(failed) == state.num_error + state.num_cancelled
    assert manifest["succeeded"] == len(succeeded) == state.num_success
    assert manifest["total"] == 5000
    assert {row["batch_request_id"] for row in failed + succeeded} == {f"row-{n:06d}" for n in range(5000)}
    assert manifest["status"] == "cancelled" and manifest["reconciled"] is True


def test_counters_moving_after_a_cancel_are_reported(
    mixed_client: XAIBatchClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    batch = mixed_client.create_batch("results-drift")
    mixed_client.add_requests(batch.batch_id, chat_requests(1200))
    real_get_batch = mixed_client.get_batch
    reads: list[int] = []

    def counters_drift(batch_id: str) -> Batch:
        # As on xAI: work in flight at cancel time lands later, moving cancelled to success.
        settled = real_get_batch(batch_id)
        reads.append(1)
        if len(reads) == 1:
            return settled
        state = settled.state.model_copy(update={"num_success": settled.state.num_success + 3})
        return settled.model_copy(update={"state": state})

    monkeypatch.setattr(mixed_client, "get_batch", counters_drift)
    with caplog.at_level(logging.WARNING, logger="airflow_provider_xai_batch.results.export"):
        manifest = export_results(mixed_client, batch.batch_id, tmp_path)

    assert manifest["reconciled"] is False
    assert manifest["expected"]["succeeded"] == manifest["succeeded"] + 3
    assert any("3 missing" in note for note in manifest["notes"])
    assert any("counters changed while exporting" in note for note in manifest["notes"])
    assert "do not match the batch's counters" in caplog.text


def test_running_batch_is_refused_unless_partial_is_allowed(tmp_path: Path) -> None:
    with (
        EmulatorServer(
            api_key=API_KEY,
            clock=(clock := ManualClock(time.time())),
            processing_rate=400,
            create_rate_limit=0,
            add_rate_limit=0,
        ) as emulator,
        XAIBatchClient(API_KEY, base_url=emulator.url) as client,
    ):
        empty = client.create_batch("results-empty")
        with pytest.raises(BatchNotFinishedError, match="is empty"):
            export_results(client, empty.batch_id, tmp_path / "empty")

        batch = client.create_batch("results-running")
        client.add_requests(batch.batch_id, chat_requests(4000))
        clock.advance(0.2)  # about 80 requests done, the batch still processing
        with pytest.raises(BatchNotFinishedError, match="allow_partial=True") as refused:
            export_results(client, batch.batch_id, tmp_path / "refused")
        assert refused.value.status == "processing"
        assert not (tmp_path / "refused").exists()

        manifest = export_results(client, batch.batch_id, tmp_path / "partial", allow_partial=True)
        after = client.get_batch(batch.batch_id)

    assert manifest["partial"] is True and manifest["status"] == "processing"
    assert 0 < manifest["total"] < 4000
    assert manifest["total"] <= after.state.num_success + after.state.num_error
    assert manifest["reconciled"] is True
    assert any("partial export" in note for note in manifest["notes"])
    rows = read_jsonl(tmp_path / "partial" / "succeeded.jsonl") + read_jsonl(
        tmp_path / "partial" / "failed.jsonl"
    )
    assert len(rows) == manifest["total"] == len({row["batch_request_id"] for row in rows})
    assert folder_names(tmp_path / "partial") == FINAL_NAMES
