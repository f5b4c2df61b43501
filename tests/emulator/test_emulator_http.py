from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from emulator_support import API_KEY, AUTH, quiet_server

from airflow_provider_xai_batch.emulator import EmulatorServer, ManualClock


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with quiet_server() as server:
        yield server


def chat_row(request_id: str, content: str = "Hello there") -> dict[str, Any]:
    body = {"model": "grok-4.3", "messages": [{"role": "user", "content": content}]}
    return {"batch_request_id": request_id, "batch_request": {"chat_get_completion": body}}


@pytest.fixture
def client(emulator: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.url, headers=AUTH, timeout=10) as http:
        yield http


def create(client: httpx.Client, name: str = "b") -> str:
    answer = client.post("/v1/batches", json={"name": name})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["batch_id"])


@pytest.mark.parametrize("header", [None, "", "Bearer", "Basic dGVzdDp0ZXN0", "Token abc", API_KEY])
def test_missing_or_garbled_authorization_answers_401(emulator: EmulatorServer, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    answer = httpx.get(f"{emulator.url}/v1/batches", headers=headers)
    assert answer.status_code == 401
    assert set(answer.json()) == {"code", "error"}


def test_a_wrong_key_answers_400_without_echoing_it(emulator: EmulatorServer) -> None:
    wrong = "xai-wrong-key-7777"
    answer = httpx.get(f"{emulator.url}/v1/batches", headers={"Authorization": f"Bearer {wrong}"})
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "Client specified an invalid argument"
    assert body["error"].startswith("Incorrect API key provided")
    assert wrong not in answer.text and "7777" not in answer.text


def test_errors_have_the_wire_body(client: httpx.Client) -> None:
    answer = client.get("/v1/batches/batch_missing")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {
        "code": "Some requested entity was not found",
        "error": "Batch batch_missing not found",
    }
    assert "retry-after" not in answer.headers


def test_round_trip_create_add_results_cancel(client: httpx.Client, emulator: EmulatorServer) -> None:
    batch_id = create(client, "round-trip")
    added = client.post(
        f"/v1/batches/{batch_id}/requests", json={"batch_requests": [chat_row("r2"), chat_row("r1")]}
    )
    assert (added.status_code, added.json()) == (200, {})

    batch = client.get(f"/v1/batches/{batch_id}").json()
    assert batch["state"]["num_success"] == 2
    results = client.get(f"/v1/batches/{batch_id}/results", params={"limit": 1}).json()
    assert [item["batch_request_id"] for item in results["results"]] == ["r1"]
    rest = client.get(
        f"/v1/batches/{batch_id}/results",
        params={"page_size": 10, "pagination_token": results["pagination_token"]},
    ).json()
    assert [item["batch_request_id"] for item in rest["results"]] == ["r2"]
    assert rest["pagination_token"] is None
    metadata = client.get(f"/v1/batches/{batch_id}/requests").json()["batch_request_metadata"]
    assert {item["state"] for item in metadata} == {"succeeded"}

    cancelled = client.post(f"/v1/batches/{batch_id}:cancel", json={})
    assert cancelled.status_code == 200 and cancelled.json()["cancel_time"] is not None
    assert client.post(f"/v1/batches/{batch_id}:cancel").status_code == 200
    refused = client.post(f"/v1/batches/{batch_id}/requests", json={"batch_requests": [chat_row("r3")]})
    assert refused.status_code == 403
    listed = client.get("/v1/batches").json()
    assert [item["batch_id"] for item in listed["batches"]] == [batch_id]
    assert emulator.calls("add_requests") == 2 and emulator.answers(403, "add_requests") == 1


def test_cancel_needs_the_colon_form(client: httpx.Client) -> None:
    batch_id = create(client)
    assert client.post(f"/v1/batches/{batch_id}/cancel").status_code in (404, 405)
    assert client.get(f"/v1/batches/{batch_id}").json()["cancel_time"] is None


def test_add_errors_over_http(client: httpx.Client) -> None:
    batch_id = create(client)
    bad_model = chat_row("r1")
    bad_model["batch_request"]["chat_get_completion"]["model"] = "grok-9"
    answer = client.post(
        f"/v1/batches/{batch_id}/requests", json={"batch_requests": [chat_row("r0"), bad_model]}
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "Model grok-9 is not supported for batch processing."
    assert client.post(f"/v1/batches/{batch_id}/requests", json={}).status_code == 400
    assert client.post(f"/v1/batches/{batch_id}/requests", content=b"{not json").status_code == 400
    assert client.get(f"/v1/batches/{batch_id}").json()["state"]["num_requests"] == 0


def test_unknown_routes_and_methods(client: httpx.Client) -> None:
    assert client.get("/v1/nothing").status_code == 404
    assert client.put("/v1/batches").status_code == 405


def upload(client: httpx.Client, parts: list[tuple[str, Any]]) -> httpx.Response:
    boundary = "emulator-test-boundary"
    chunks = []
    for name, value in parts:
        if name == "file":
            filename, content = value
            head = f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\nContent-Type: application/jsonl'
        else:
            head, content = f'Content-Disposition: form-data; name="{name}"', str(value).encode()
        chunks.append(f"--{boundary}\r\n{head}\r\n\r\n".encode() + content + b"\r\n")
    body = b"".join(chunks) + f"--{boundary}--\r\n".encode()
    return client.post(
        "/v1/files", content=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )


def test_file_upload_metadata_content_and_delete(client: httpx.Client) -> None:
    line = {
        "custom_id": "c1",
        "url": "/v1/chat/completions",
        "body": chat_row("x")["batch_request"]["chat_get_completion"],
    }
    content = (json.dumps(line) + "\n").encode()
    answer = upload(
        client, [("purpose", "batch"), ("expires_after", 3600), ("file", ("batch.jsonl", content))]
    )
    assert answer.status_code == 200, answer.text
    uploaded = answer.json()
    assert set(uploaded) == {"id", "object", "bytes", "created_at", "expires_at", "filename", "purpose"}
    assert uploaded["id"].startswith("file_") and uploaded["object"] == "file"
    assert (uploaded["bytes"], uploaded["filename"], uploaded["purpose"]) == (len(content), "batch.jsonl", "")
    assert uploaded["expires_at"] == uploaded["created_at"] + 3600
    assert client.get(f"/v1/files/{uploaded['id']}").json() == uploaded
    assert client.get(f"/v1/files/{uploaded['id']}/content").content == content
    assert [item["id"] for item in client.get("/v1/files").json()["data"]] == [uploaded["id"]]

    # A file batch is sealed: inline adds are refused.
    batch = client.post("/v1/batches", json={"name": "f", "input_file_id": uploaded["id"]}).json()
    assert batch["input_file_id"] == uploaded["id"]
    sealed = client.post(
        f"/v1/batches/{batch['batch_id']}/requests", json={"batch_requests": [chat_row("r")]}
    )
    assert sealed.status_code == 412
    assert sealed.json()["error"] == "Cannot add inline requests to a file-based batch"

    assert client.delete(f"/v1/files/{uploaded['id']}").status_code == 200
    assert client.get(f"/v1/files/{uploaded['id']}").status_code == 404


def test_upload_wants_expires_after_before_the_file(client: httpx.Client) -> None:
    answer = upload(client, [("file", ("a.jsonl", b"{}\n")), ("expires_after", 3600)])
    assert answer.status_code == 400
    assert "before the file" in answer.json()["error"]
    assert upload(client, [("expires_after", 10), ("file", ("a.jsonl", b"{}\n"))]).status_code == 400
    assert upload(client, [("purpose", "batch")]).status_code == 400
    assert client.post("/v1/files", json={"file": "x"}).status_code == 400


def test_an_add_call_over_the_size_cap_answers_413(emulator: EmulatorServer, client: httpx.Client) -> None:
    emulator.config.max_add_call_bytes = 20_000
    batch_id = create(client)
    rows = [chat_row(f"r{n}", "x" * 1000) for n in range(30)]
    answer = client.post(f"/v1/batches/{batch_id}/requests", json={"batch_requests": rows})
    assert answer.status_code == 413
    assert set(answer.json()) == {"code", "error"}
    # The connection stays usable and nothing was added.
    assert client.get(f"/v1/batches/{batch_id}").json()["state"]["num_requests"] == 0
    assert (
        client.post(f"/v1/batches/{batch_id}/requests", json={"batch_requests": rows[:5]}).status_code == 200
    )


def test_a_25_mb_add_call_is_accepted(emulator: EmulatorServer, client: httpx.Client) -> None:
    batch_id = create(client)
    filler = "y" * 24_000
    rows = [chat_row(f"r{n:04d}", filler) for n in range(1000)]
    body = json.dumps({"batch_requests": rows}).encode()
    assert 24_000_000 < len(body) <= 25_000_000
    answer = client.post(
        f"/v1/batches/{batch_id}/requests", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 200
    assert client.get(f"/v1/batches/{batch_id}").json()["state"]["num_requests"] == 1000


def test_an_injected_status_answers_once(emulator: EmulatorServer, client: httpx.Client) -> None:
    batch_id = create(client)
    emulator.faults.inject("add_requests", status=503)
    failed = client.post(f"/v1/batches/{batch_id}/requests", json={"batch_requests": [chat_row("r1")]})
    assert failed.status_code == 503 and set(failed.json()) == {"code", "error"}
    assert client.get(f"/v1/batches/{batch_id}").json()["state"]["num_requests"] == 0
    assert (
        client.post(f"/v1/batches/{batch_id}/requests", json={"batch_requests": [chat_row("r1")]}).status_code
        == 200
    )
    assert emulator.answers(503, "add_requests") == 1 and emulator.calls("add_requests") == 2


def test_a_connection_dropped_before_the_call_applies_nothing(
    emulator: EmulatorServer, client: httpx.Client
) -> None:
    batch_id = create(client)
    emulator.faults.inject("add_requests", drop="before")
    with pytest.raises(httpx.TransportError):
        client.post(f"/v1/batches/{batch_id}/requests", json={"batch_requests": [chat_row("r1")]})
    assert client.get(f"/v1/batches/{batch_id}").json()["state"]["num_requests"] == 0
    assert emulator.faults.dropped("add_requests") == 1


def test_a_connection_dropped_after_the_call_has_applied_it(
    emulator: EmulatorServer, client: httpx.Client
) -> None:
    batch_id = create(client)
    emulator.faults.inject("add_requests", drop="after")
    rows = [chat_row("r1"), chat_row("r2")]
    with pytest.raises(httpx.TransportError):
        client.post(f"/v1/batches/{batch_id}/requests", json={"batch_requests": rows})
    assert client.get(f"/v1/batches/{batch_id}").json()["state"]["num_requests"] == 2
    # The safe retry: the same ids and content are accepted and add nothing.
    assert client.post(f"/v1/batches/{batch_id}/requests", json={"batch_requests": rows}).status_code == 200
    assert client.get(f"/v1/batches/{batch_id}").json()["state"]["num_requests"] == 2


def test_latency_delays_answers_without_serialising_connections() -> None:
    # How long the answers take (side by side, not one after another) is in benchmarks/timings.py.
    with EmulatorServer(api_key=API_KEY, latency_ms=300) as emu:
        answers: list[int] = []

        def call() -> None:
            answers.append(httpx.get(f"{emu.url}/v1/batches", headers=AUTH).status_code)

        threads = [threading.Thread(target=call) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert emu.calls("list_batches") == 4
    assert answers == [200] * 4


def test_an_injected_latency_on_one_route(emulator: EmulatorServer, client: httpx.Client) -> None:
    # The delay itself is measured in benchmarks/timings.py.
    emulator.faults.inject("list_batches", latency_ms=250)
    assert client.post("/v1/batches", json={"name": "other-route"}).status_code == 200
    assert [fault["latency_ms"] for fault in emulator.faults.pending()] == [250]  # another route: untouched
    assert client.get("/v1/batches").status_code == 200
    assert emulator.faults.pending() == []  # spent on the one call it was meant for


def test_random_faults_follow_the_rate_and_kinds() -> None:
    with EmulatorServer(api_key=API_KEY, fault_rate=1.0, fault_kinds=("500",)) as emu:
        answers = [httpx.get(f"{emu.url}/v1/batches", headers=AUTH).status_code for _ in range(3)]
        assert answers == [500, 500, 500]
        emu.config.fault_rate = 0.0
        assert httpx.get(f"{emu.url}/v1/batches", headers=AUTH).status_code == 200


def test_control_routes(emulator: EmulatorServer, client: httpx.Client) -> None:
    assert httpx.get(f"{emulator.url}/_emulator/stats").status_code == 401
    injected = client.post("/_emulator/faults", json={"route": "create_batch", "status": 429, "count": 2})
    assert injected.status_code == 200 and injected.json()["pending"][0]["count"] == 2
    assert client.post("/_emulator/faults", json={"route": "nope", "status": 500}).status_code == 400
    assert [client.post("/v1/batches", json={"name": "n"}).status_code for _ in range(3)] == [429, 429, 200]

    stats = client.get("/_emulator/stats").json()
    assert stats["calls"]["create_batch"] == 3
    assert stats["rate_limited"] == 2
    assert stats["answers_by_route"]["create_batch"] == {"200": 1, "429": 2}
    assert stats["service"]["batches"] == 1

    patched = client.patch("/_emulator/config", json={"processing_rate": 0.5, "add_rate_limit": 7})
    assert patched.status_code == 200 and API_KEY not in patched.text
    assert (emulator.config.processing_rate, emulator.config.add_rate_limit) == (0.5, 7)
    assert client.patch("/_emulator/config", json={"no_such_knob": 1}).status_code == 400
    assert client.patch("/_emulator/config", json={"api_key": "other"}).status_code == 400

    assert client.post("/_emulator/reset").status_code == 200
    assert client.get("/v1/batches").json()["batches"] == []
    assert client.get("/_emulator/stats").json()["calls"] == {"list_batches": 1}


def test_the_request_log_shows_what_was_sent(emulator: EmulatorServer, client: httpx.Client) -> None:
    batch_id = create(client, "logged-name")
    entries = emulator.request_log.entries()
    assert [(entry.method, entry.route, entry.status) for entry in entries] == [("POST", "create_batch", 200)]
    assert b"logged-name" in entries[0].body_excerpt
    assert entries[0].header("authorization") == f"Bearer {API_KEY}"
    assert not emulator.request_log.contains(API_KEY)
    assert emulator.request_log.contains(API_KEY, include_authorization=True)
    client.get(f"/v1/batches/{batch_id}/results", params={"limit": 5})
    assert emulator.request_log.entries()[-1].target == f"/v1/batches/{batch_id}/results?limit=5"


def test_stop_closes_open_connections_promptly() -> None:
    emu = EmulatorServer(api_key=API_KEY).start()
    idle = socket.create_connection(("127.0.0.1", emu.port))
    emu.stop()  # promptly: benchmarks/timings.py measures it
    idle.settimeout(2.0)
    assert idle.recv(1) == b""  # closed by the server
    idle.close()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{emu.url}/v1/batches", headers=AUTH)


def test_a_manual_clock_drives_processing_over_http() -> None:
    clock = ManualClock(1_788_000_000)
    with (
        EmulatorServer(api_key=API_KEY, clock=clock, processing_rate=1.0) as emu,
        httpx.Client(base_url=emu.url, headers=AUTH) as client,
    ):
        batch_id = create(client)
        client.post(
            f"/v1/batches/{batch_id}/requests", json={"batch_requests": [chat_row("a"), chat_row("b")]}
        )
        assert client.get(f"/v1/batches/{batch_id}").json()["state"]["num_pending"] == 2
        moved = client.post("/_emulator/clock", json={"advance": 1.5})
        assert moved.json() == {"now": 1_788_000_001.5}
        assert client.get(f"/v1/batches/{batch_id}").json()["state"]["num_pending"] == 1
        clock.advance(1.0)
        assert client.get(f"/v1/batches/{batch_id}").json()["state"]["num_success"] == 2


def test_the_clock_route_needs_a_manual_clock(client: httpx.Client) -> None:
    assert client.post("/_emulator/clock", json={"advance": 1}).status_code == 412


def test_unknown_server_settings_are_refused() -> None:
    with pytest.raises(TypeError):
        EmulatorServer(api_key=API_KEY, procesing_rate=1)
