"""The emulator names image and video results at its own address and serves real files there, for an hour."""

from __future__ import annotations

import base64
from typing import Any

import httpx
from support.media_files import check_mp4, decode_png

from airflow_provider_xai_batch.emulator import EmulatorServer, ManualClock
from airflow_provider_xai_batch.emulator.cli import build_parser

KEY = "media-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


def image(request_id: str, **body: Any) -> dict[str, Any]:
    return {
        "batch_request_id": request_id,
        "batch_request": {"image_generation": {"model": "grok-imagine-image", "prompt": "a cat", **body}},
    }


def video(request_id: str) -> dict[str, Any]:
    return {
        "batch_request_id": request_id,
        "batch_request": {"video_generation": {"model": "grok-imagine-video", "prompt": "waves"}},
    }


def results_of(emu: EmulatorServer, requests: list[dict[str, Any]]) -> dict[str, Any]:
    batch_id = httpx.post(f"{emu.url}/v1/batches", json={"name": "media"}, headers=AUTH).json()["batch_id"]
    added = httpx.post(
        f"{emu.url}/v1/batches/{batch_id}/requests", json={"batch_requests": requests}, headers=AUTH
    )
    assert added.status_code == 200
    page = httpx.get(f"{emu.url}/v1/batches/{batch_id}/results", headers=AUTH).json()
    return {row["batch_request_id"]: row["batch_result"]["response"] for row in page["results"]}


def test_image_and_video_results_are_served_from_the_emulator_without_a_key() -> None:
    with EmulatorServer(api_key=KEY, clock=ManualClock()) as emu:
        results = results_of(
            emu, [image("img/1", n=3), video("vid-1"), image("b64", response_format="b64_json", n=2)]
        )
        images = results["img/1"]["image_generation"]["data"]
        assert len(images) == 3
        bodies = []
        for item in images:
            assert item["url"].startswith(emu.url + "/media/")
            answer = httpx.get(item["url"])
            assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
            assert decode_png(answer.content) == (64, 64)
            bodies.append(answer.content)
        assert len(set(bodies)) == 3, "each image of a result is its own file"
        clip = httpx.get(results["vid-1"]["video_generation"]["video"]["url"])
        assert clip.headers["content-type"] == "video/mp4"
        assert check_mp4(clip.content) == 24
        encoded = results["b64"]["image_generation"]["data"]
        assert len(encoded) == 2 and "url" not in encoded[0]
        assert decode_png(base64.b64decode(encoded[0]["b64_json"])) == (64, 64)
        media_calls = [entry for entry in emu.request_log if entry.route == "media_file"]
        assert len(media_calls) == 4 and all(entry.header("authorization") is None for entry in media_calls)


def test_media_urls_expire_after_an_hour_on_the_emulator_clock() -> None:
    clock = ManualClock()
    with EmulatorServer(api_key=KEY, clock=clock) as emu:
        url = results_of(emu, [image("a")])["a"]["image_generation"]["data"][0]["url"]
        clock.advance(3599)
        assert httpx.get(url).status_code == 200
        clock.advance(1)
        expired = httpx.get(url)
        assert expired.status_code == 403 and "expired" in expired.text
        # Media that was never made is not found at all.
        assert httpx.get(url.replace("-0.png", "-7.png")).status_code == 404
        assert httpx.get(url.replace(".png", ".mp4")).status_code == 404


def test_media_lifetime_is_a_setting() -> None:
    clock = ManualClock()
    with EmulatorServer(api_key=KEY, clock=clock, media_ttl_seconds=10) as emu:
        url = results_of(emu, [video("v")])["v"]["video_generation"]["video"]["url"]
        assert httpx.head(url).status_code == 200
        clock.advance(10)
        assert httpx.get(url).status_code == 403
        patched = httpx.patch(f"{emu.url}/_emulator/config", json={"media_ttl_seconds": 100}, headers=AUTH)
        assert patched.json()["media_ttl_seconds"] == 100
        assert httpx.get(url).status_code == 200


def test_cli_takes_media_flags() -> None:
    args = build_parser().parse_args(
        ["--media-ttl-seconds", "60", "--media-base-url", "http://media.local:9"]
    )
    assert (args.media_ttl_seconds, args.media_base_url) == (60.0, "http://media.local:9")


def test_media_route_meets_injected_faults() -> None:
    with EmulatorServer(api_key=KEY, clock=ManualClock()) as emu:
        url = results_of(emu, [image("a")])["a"]["image_generation"]["data"][0]["url"]
        emu.faults.inject("media_file", status=503)
        assert httpx.get(url).status_code == 503
        assert httpx.get(url).status_code == 200
