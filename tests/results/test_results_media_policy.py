"""Which media URLs an export fetches: the pure policy, and hostile results that must fetch nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_xai_batch.client import XAIBatchClient
from airflow_provider_xai_batch.emulator import EmulatorServer, ManualClock
from airflow_provider_xai_batch.results import export_results
from airflow_provider_xai_batch.results.media import MediaExportError, MediaPolicy, media_settings_from_extra
from airflow_provider_xai_batch.results.media.fetch import MediaFailure, MediaFetcher
from airflow_provider_xai_batch.results.media.items import media_items
from airflow_provider_xai_batch.results.media.naming import extension_for, media_file_name, sniff_content_type
from airflow_provider_xai_batch.results.media.tally import MediaTally

API_KEY = "media-policy-key-91c"
XAI = MediaPolicy.for_connection("https://api.x.ai")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://imgen.x.ai/xai-imgen/a.jpeg", None),
        ("https://vidgen.x.ai/v/b.mp4?sig=1", None),
        ("http://imgen.x.ai/a.jpeg", "only https"),
        ("https://imgen.x.ai:8443/a.jpeg", "not on the media allow-list"),
        ("https://evil.example/a.png", "not on the media allow-list"),
        ("https://imgen.x.ai.evil.example/a.png", "not on the media allow-list"),
        ("https://169.254.169.254/latest/meta-data/", "not on the media allow-list"),
        ("https://user:pw@imgen.x.ai/a.png", "credentials"),
        ("http://127.0.0.1:8787/media/b/r-0.png", "only https"),
        ("file:///etc/passwd", "only https"),
        ("ftp://imgen.x.ai/a.png", "only https"),
    ],
)
def test_only_https_urls_on_xai_media_hosts_are_fetched(url: str, reason: str | None) -> None:
    refusal = XAI.refusal(url)
    assert (refusal is None) if reason is None else (refusal is not None and reason in refusal)


def test_a_loopback_or_plain_http_connection_allows_exactly_its_own_origin() -> None:
    local = MediaPolicy.for_connection("http://127.0.0.1:8787")
    assert local.refusal("http://127.0.0.1:8787/media/b/x-0.png") is None
    assert local.refusal("http://127.0.0.1:8788/media/b/x-0.png") is not None
    assert local.refusal("http://localhost:8787/media/b/x-0.png") is not None
    assert local.refusal("https://imgen.x.ai/a.png") is None
    internal = MediaPolicy.for_connection("http://emulator.internal:8080")
    assert internal.refusal("http://emulator.internal:8080/media/a-0.png") is None
    assert internal.refusal("http://emulator.internal:9090/media/a-0.png") is not None


def test_extra_hosts_widen_the_list_and_addresses_are_checked() -> None:
    policy = MediaPolicy.for_connection(
        "https://api.x.ai", extra_hosts=["cdn.example.com", "*.media.example.org", "10.1.2.3"]
    )
    assert policy.refusal("https://cdn.example.com/a.png") is None
    assert policy.refusal("https://eu.media.example.org/a.png") is None
    assert policy.refusal("https://media.example.org/a.png") is not None
    assert "private address" in str(policy.refusal("https://10.1.2.3/a.png"))
    url = "https://cdn.example.com/a.png"
    assert "link-local" in str(policy.address_refusal(url, ["169.254.169.254"]))
    assert "loopback" in str(policy.address_refusal(url, ["::1"]))
    assert "loopback" in str(policy.address_refusal(url, ["::ffff:127.0.0.1"]))
    assert policy.address_refusal(url, ["104.18.2.3"]) is None
    permissive = MediaPolicy.for_connection("https://api.x.ai", extra_hosts=["10.1.2.3"], allow_private=True)
    assert permissive.refusal("https://10.1.2.3/a.png") is None


def test_connection_extra_settings() -> None:
    assert media_settings_from_extra(
        {"media_hosts": ["a.example", "b.example"], "media_allow_private_addresses": "true"}
    ) == {"allow_media_hosts": ("a.example", "b.example"), "media_allow_private_addresses": True}
    assert media_settings_from_extra({}) == {}


def test_names_extensions_and_items() -> None:
    assert media_file_name("r1", 2, "webp") == "r1-2.webp"
    assert "/" not in media_file_name("../../etc", 0, "png")
    assert media_file_name("a b", 0, "png") != media_file_name("a_b", 0, "png")
    assert extension_for("video/mp4", None) == "mp4"
    assert extension_for("application/octet-stream", "https://h/clip.MP4") == "mp4"
    assert extension_for(None, "https://h/noext") == "bin"
    assert sniff_content_type(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert sniff_content_type(b"RIFF\0\0\0\0WEBPVP8 ") == "image/webp"
    # An entry with neither URL nor data keeps its place, so positions match the response.
    items = media_items(
        "image_generation", {"data": [{"revised_prompt": ""}, {"url": "https://imgen.x.ai/b"}]}
    )
    assert [(item.position, item.url) for item in items] == [(0, None), (1, "https://imgen.x.ai/b")]


def test_tally_lists_failures_without_signatures() -> None:
    tally = MediaTally()
    tally.stored(10, reused=True)
    tally.failure("r", 0, "refused: x", refused=True, url="https://evil.example/a.png?token=secret#frag")
    section = tally.section("download")
    assert (section["files"], section["bytes"], section["reused"], section["refused"]) == (1, 10, 1, 1)
    assert section["failures"][0]["url"] == "https://evil.example/a.png"
    assert "refused by the media URL policy" in tally.error_message()


# -- hostile results against real sockets --------------------------------------------------------


class _Redirector(BaseHTTPRequestHandler):
    target = ""
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:
        type(self).seen.append(dict(self.headers))
        self.send_response(302)
        self.send_header("Location", type(self).target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def bystander() -> Iterator[EmulatorServer]:
    """Another service on loopback that no hostile URL may reach."""
    with EmulatorServer(api_key="other") as server:
        yield server


@pytest.fixture
def redirector(bystander: EmulatorServer) -> Iterator[str]:
    _Redirector.target = f"{bystander.url}/v1/batches"
    _Redirector.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def hostile_export(tmp_path: Path, media_base_url: str) -> MediaExportError:
    with EmulatorServer(api_key=API_KEY, clock=ManualClock(), media_base_url=media_base_url) as emu:
        with XAIBatchClient(API_KEY, base_url=emu.url) as client:
            batch = client.create_batch("hostile")
            image = {"model": "grok-imagine-image", "prompt": "x", "n": 2}
            client.add_requests(
                batch.batch_id, [{"batch_request_id": "r", "batch_request": {"image_generation": image}}]
            )
            with pytest.raises(MediaExportError) as raised:
                export_results(client, batch.batch_id, str(tmp_path))
        assert not [entry for entry in emu.request_log if entry.route == "media_file"]
    assert not (tmp_path / "media").exists()
    return raised.value


def test_results_pointing_at_metadata_addresses_or_other_local_ports_fetch_nothing(
    tmp_path: Path, bystander: EmulatorServer
) -> None:
    metadata = hostile_export(tmp_path / "metadata", "https://169.254.169.254/latest")
    assert metadata.failed == 2 and "refused by the media URL policy" in str(metadata)
    other_port = hostile_export(tmp_path / "port", bystander.url)
    assert "only https" in str(other_port)
    assert len(bystander.request_log) == 0


def test_http_url_is_refused_when_the_connection_is_https(emulator: EmulatorServer) -> None:
    fetcher = MediaFetcher(MediaPolicy.for_connection("https://api.x.ai", extra_hosts=["127.0.0.1"]))
    try:
        with pytest.raises(MediaFailure, match="only https") as raised:
            fetcher.fetch(f"{emulator.url}/media/b/cg-0.png", lambda _: pytest.fail("nothing may be stored"))
        assert raised.value.refused
    finally:
        fetcher.close()
    assert len(emulator.request_log) == 0


def test_a_redirect_off_the_list_is_not_followed(redirector: str, bystander: EmulatorServer) -> None:
    fetcher = MediaFetcher(MediaPolicy.for_connection(redirector))
    try:
        with pytest.raises(MediaFailure, match="refused") as raised:
            fetcher.fetch(f"{redirector}/media/a.png", lambda _: pytest.fail("nothing may be stored"))
        assert raised.value.refused
    finally:
        fetcher.close()
    assert len(_Redirector.seen) == 1 and len(bystander.request_log) == 0
    assert not any(name.lower() in ("authorization", "cookie") for name in _Redirector.seen[0])


def test_an_allowed_host_resolving_to_a_private_address_is_refused_before_connecting() -> None:
    asked: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return ["10.0.0.5"]

    fetcher = MediaFetcher(MediaPolicy.for_connection("https://api.x.ai"), resolve=resolve)
    try:
        with pytest.raises(MediaFailure, match="resolves to a private address"):
            fetcher.fetch(
                "https://imgen.x.ai/xai-imgen/a.jpeg", lambda _: pytest.fail("nothing may be stored")
            )
    finally:
        fetcher.close()
    assert asked == [("imgen.x.ai", 443)]


def test_files_above_the_size_cap_are_refused(tmp_path: Path) -> None:
    with (
        EmulatorServer(api_key=API_KEY, clock=ManualClock()) as emu,
        XAIBatchClient(API_KEY, base_url=emu.url) as client,
    ):
        batch = client.create_batch("big")
        video = {"model": "grok-imagine-video", "prompt": "waves"}
        client.add_requests(
            batch.batch_id, [{"batch_request_id": "v", "batch_request": {"video_generation": video}}]
        )
        manifest = export_results(
            client, batch.batch_id, str(tmp_path), media_max_bytes=1000, allow_partial=True
        )
    assert (
        manifest["media"]["failed"] == 1
        and "above the limit of 1000 bytes" in manifest["media"]["failures"][0]["reason"]
    )
    assert not list(tmp_path.glob("media/*")), "a file over the cap is discarded, staging name included"
