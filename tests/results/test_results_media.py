"""Images and videos of a batch stored beside its results, through the emulator over loopback."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from support.media_files import check_mp4, decode_png

from airflow_provider_xai_batch.client import XAIBatchClient
from airflow_provider_xai_batch.emulator import EmulatorServer, ManualClock
from airflow_provider_xai_batch.results import export_results
from airflow_provider_xai_batch.results.media import MediaExportError

API_KEY = "media-export-key-7f3a"


def media_requests() -> list[dict[str, Any]]:
    image: dict[str, Any] = {"model": "grok-imagine-image", "prompt": "a lighthouse at dusk"}
    return [
        {"batch_request_id": "img-1", "batch_request": {"image_generation": {**image, "n": 3}}},
        {
            "batch_request_id": "img-2/b64",
            "batch_request": {"image_edit": {**image, "n": 2, "response_format": "b64_json"}},
        },
        {
            "batch_request_id": "vid-1",
            "batch_request": {"video_generation": {"model": "grok-imagine-video", "prompt": "waves"}},
        },
        {
            "batch_request_id": "zz-chat",
            "batch_request": {
                "chat_get_completion": {"model": "grok-4.3", "messages": [{"role": "user", "content": "hi"}]}
            },
        },
        {
            "batch_request_id": "zz-fails",
            "batch_request": {"image_generation": {**image, "prompt": "boom [[fail]]"}},
        },
    ]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def emulator(clock: ManualClock) -> Iterator[EmulatorServer]:
    with EmulatorServer(api_key=API_KEY, clock=clock) as server:
        yield server


@pytest.fixture
def client(emulator: EmulatorServer) -> Iterator[XAIBatchClient]:
    with XAIBatchClient(API_KEY, base_url=emulator.url) as api:
        yield api


def finished_batch(client: XAIBatchClient, requests: list[dict[str, Any]] | None = None) -> str:
    batch = client.create_batch("media")
    client.add_requests(batch.batch_id, requests if requests is not None else media_requests())
    return batch.batch_id


def rows_of(path: Path) -> dict[str, dict[str, Any]]:
    return {row["batch_request_id"]: row for row in map(json.loads, path.read_bytes().splitlines())}


def local_file(uri: str) -> Path:
    assert uri.startswith("file://")
    return Path(uri.removeprefix("file://"))


def media_calls(emulator: EmulatorServer) -> list[Any]:
    return [entry for entry in emulator.request_log if entry.route == "media_file"]


def test_images_and_videos_land_beside_the_results_and_rows_point_at_them(
    client: XAIBatchClient, emulator: EmulatorServer, tmp_path: Path
) -> None:
    batch_id = finished_batch(client)
    out = tmp_path / "out"
    manifest = export_results(client, batch_id, str(out))

    rows = rows_of(out / "succeeded.jsonl")
    images = rows["img-1"]["media"]
    assert [entry["uri"] for entry in images] == [f"file://{out}/media/img-1-{n}.png" for n in range(3)]
    for entry, item in zip(images, rows["img-1"]["response"]["data"], strict=True):
        stored = local_file(entry["uri"]).read_bytes()
        assert decode_png(stored) == (64, 64)
        assert (entry["content_type"], entry["bytes"]) == ("image/png", len(stored))
        assert entry["sha256"] == hashlib.sha256(stored).hexdigest()
        assert item["url"].startswith(emulator.url)  # the raw response stays as xAI sent it
    decoded = rows["img-2/b64"]["media"]
    assert len(decoded) == 2 and all(local_file(entry["uri"]).parent == out / "media" for entry in decoded)
    assert decode_png(local_file(decoded[1]["uri"]).read_bytes()) == (64, 64)
    [clip] = rows["vid-1"]["media"]
    assert clip["uri"] == f"file://{out}/media/vid-1-0.mp4" and clip["content_type"] == "video/mp4"
    assert check_mp4(local_file(clip["uri"]).read_bytes()) == 24
    assert "media" not in rows["zz-chat"]

    stored_files = sorted(path.name for path in (out / "media").iterdir())
    assert len(stored_files) == 6 and not any(name.startswith(".") for name in stored_files)
    section = manifest["media"]
    assert (section["mode"], section["files"], section["failed"]) == ("download", 6, 0)
    assert section["bytes"] == sum(path.stat().st_size for path in (out / "media").iterdir())
    assert json.loads((out / "manifest.json").read_text())["media"] == section

    # Four URLs fetched (three images, one video), none with the key, a cookie or any credential.
    calls = media_calls(emulator)
    assert len(calls) == 4
    for call in calls:
        assert call.header("authorization") is None and call.header("cookie") is None
        assert API_KEY not in call.text(include_authorization=True)


def test_a_rerun_reuses_stored_files_even_after_the_urls_expired(
    client: XAIBatchClient, emulator: EmulatorServer, clock: ManualClock, tmp_path: Path
) -> None:
    batch_id = finished_batch(client)
    out = tmp_path / "out"
    first = export_results(client, batch_id, str(out))
    fetched = len(media_calls(emulator))
    clock.advance(7200)
    second = export_results(client, batch_id, str(out))
    assert len(media_calls(emulator)) == fetched, "nothing fetched again"
    assert second["media"]["reused"] == second["media"]["files"] == first["media"]["files"] == 6
    assert second["media"]["failed"] == 0

    # A stored file that changed is not trusted: it is fetched again (and here, expired).
    (out / "media" / "img-1-1.png").write_bytes(b"not the image")
    with pytest.raises(MediaExportError, match="1 media file could not be stored"):
        export_results(client, batch_id, str(out))


def test_export_after_expiry_fails_naming_the_failures_unless_partial_is_allowed(
    client: XAIBatchClient, clock: ManualClock, tmp_path: Path
) -> None:
    batch_id = finished_batch(client)
    clock.advance(3600)
    with pytest.raises(MediaExportError) as raised:
        export_results(client, batch_id, str(tmp_path / "strict"))
    message = str(raised.value)
    assert "4 media files could not be stored" in message and "expire one hour after generation" in message
    assert raised.value.expired == 4
    # Everything else is still written, and the manifest names each failure.
    strict = json.loads((tmp_path / "strict" / "manifest.json").read_text())
    assert strict["media"]["failed"] == 4 and strict["media"]["files"] == 2  # the b64 images

    manifest = export_results(client, batch_id, str(tmp_path / "partial"), allow_partial=True)
    failures = manifest["media"]["failures"]
    assert sorted((item["batch_request_id"], item["index"]) for item in failures) == [
        ("img-1", 0),
        ("img-1", 1),
        ("img-1", 2),
        ("vid-1", 0),
    ]
    assert all("HTTP 403" in item["reason"] and "?" not in item["url"] for item in failures)
    rows = rows_of(tmp_path / "partial" / "succeeded.jsonl")
    assert [entry["uri"] for entry in rows["img-1"]["media"]] == [None, None, None]
    assert "expired" in rows["vid-1"]["media"][0]["error"]


def test_media_urls_mode_keeps_todays_rows(
    client: XAIBatchClient, emulator: EmulatorServer, tmp_path: Path
) -> None:
    batch_id = finished_batch(client)
    manifest = export_results(client, batch_id, str(tmp_path), media="urls")
    rows = rows_of(tmp_path / "succeeded.jsonl")
    assert all("media" not in row for row in rows.values())
    assert not (tmp_path / "media").exists() and media_calls(emulator) == []
    assert (manifest["media"]["mode"], manifest["media"]["files"]) == ("urls", 0)
    with pytest.raises(ValueError, match="media must be one of"):
        export_results(client, batch_id, str(tmp_path), media="inline")


def test_transient_media_errors_are_retried(
    client: XAIBatchClient, emulator: EmulatorServer, tmp_path: Path
) -> None:
    batch_id = finished_batch(client, media_requests()[2:3])
    emulator.faults.inject("media_file", status=503, count=2)
    manifest = export_results(client, batch_id, str(tmp_path))
    assert manifest["media"]["files"] == 1 and manifest["media"]["failed"] == 0
    assert emulator.answers(503, "media_file") == 2 and emulator.answers(200, "media_file") == 1


def test_media_lands_in_s3_beside_the_results(
    client: XAIBatchClient, s3_bucket: str, s3_endpoint: str
) -> None:
    batch_id = finished_batch(client)
    manifest = export_results(client, batch_id, f"s3://{s3_bucket}/media-run", output_conn_id="aws_test")
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    keys = {
        item["Key"] for item in s3.list_objects_v2(Bucket=s3_bucket, Prefix="media-run/media/")["Contents"]
    }
    assert len(keys) == 6 and manifest["media"]["files"] == 6
    row = next(
        json.loads(line)
        for line in s3.get_object(Bucket=s3_bucket, Key="media-run/succeeded.jsonl")["Body"]
        .read()
        .splitlines()
        if json.loads(line)["batch_request_id"] == "vid-1"
    )
    [clip] = row["media"]
    assert clip["uri"] == f"s3://{s3_bucket}/media-run/media/vid-1-0.mp4"
    body = s3.get_object(Bucket=s3_bucket, Key="media-run/media/vid-1-0.mp4")["Body"].read()
    assert check_mp4(body) == 24 and hashlib.sha256(body).hexdigest() == clip["sha256"]
    image = s3.get_object(Bucket=s3_bucket, Key="media-run/media/img-1-2.png")["Body"].read()
    assert decode_png(image) == (64, 64)
    assert s3.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_resubmission_rounds_store_media_of_the_round_that_succeeded(
    client: XAIBatchClient, emulator: EmulatorServer, tmp_path: Path
) -> None:
    from airflow_provider_xai_batch.results.rounds import export_rounds

    image = {"model": "grok-imagine-image", "prompt": "a kite [[fail-transient]]", "n": 2}
    rows = [
        {"batch_request_id": "kite", "batch_request": {"image_generation": image}},
        {"batch_request_id": "vid-1", "batch_request": media_requests()[2]["batch_request"]},
    ]
    first = finished_batch(client, rows)
    second = finished_batch(client, rows[:1])  # the passing failure, sent again
    manifest = export_rounds(client, [first, second], str(tmp_path))
    stored = rows_of(tmp_path / "succeeded.jsonl")
    assert stored["kite"]["attempts"] == 2
    assert [entry["uri"] for entry in stored["kite"]["media"]] == [
        f"file://{tmp_path}/media/kite-0.png",
        f"file://{tmp_path}/media/kite-1.png",
    ]
    assert check_mp4(local_file(stored["vid-1"]["media"][0]["uri"]).read_bytes()) == 24
    assert (manifest["media"]["files"], manifest["media"]["failed"]) == (3, 0)
