"""The emulator refuses what the service refuses, with the service's 400, and keeps serving.

Users' CI trusts the emulator: a body it accepts must be one the service accepts. These bodies are
sent over a real loopback socket on one keep-alive connection, so a dropped connection shows as an
error on the next call, and the log is read for anything the emulator wrote besides its answers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from emulator_support import AUTH, START, quiet_config, quiet_server

from airflow_provider_xai_batch.emulator import BatchService, EmulatorServer, ManualClock, ServiceError
from airflow_provider_xai_batch.emulator.strict_json import MAX_JSON_DEPTH

CHAT = {"model": "grok-4.3", "messages": [{"role": "user", "content": "Hello"}]}


def complaints(records: list[logging.LogRecord]) -> list[str]:
    """What the emulator (or the event loop running it) wrote as warnings, errors or tracebacks."""
    return [
        record.getMessage()
        for record in records
        if record.exc_info
        or (
            record.levelno >= logging.WARNING
            and record.name.startswith(("airflow_provider_xai_batch", "asyncio"))
        )
    ]


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    with quiet_server() as server:
        yield server


@pytest.fixture
def client(emulator: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.url, headers=AUTH, timeout=30) as http:
        yield http


def row(request_id: str, **extra: str) -> bytes:
    """An add-call item written by hand, with raw JSON text spliced into its body."""
    body = json.dumps(CHAT)[:-1] + "".join(f', "{key}": {value}' for key, value in extra.items()) + "}"
    return (
        b'{"batch_request_id": "'
        + request_id.encode()
        + b'", "batch_request": {"chat_get_completion": '
        + body.encode()
        + b"}}"
    )


def add_body(*items: bytes) -> bytes:
    return b'{"batch_requests": [' + b", ".join(items) + b"]}"


def nested(depth: int) -> str:
    """JSON text of arrays nested ``depth`` levels."""
    return "[" * depth + "]" * depth


# The add-call item sits 3 levels down (body object, list, item) and its body 2 more.
BODY_ROOM = MAX_JSON_DEPTH - 5

# (name, body, what the 400's message says)
REFUSED_ADD_BODIES: list[tuple[str, bytes, str]] = [
    ("nan", add_body(row("a", temperature="NaN")), "NaN is not a JSON number"),
    ("infinity", add_body(row("a", top_p="Infinity")), "Infinity is not a JSON number"),
    ("negative-infinity", add_body(row("a"), row("b", top_p="-Infinity")), "-Infinity is not a JSON number"),
    ("number-out-of-range", add_body(row("a", temperature="1e999")), "1e999 is out of range"),
    ("one-level-too-deep", add_body(row("a", tools=nested(BODY_ROOM + 1))), "nested more than 100 levels"),
    ("pathologically-deep", add_body(row("a", tools=nested(200_000))), "nested more than 100 levels"),
    ("deep-and-unclosed", b'{"batch_requests": ' + b"[" * 50_000, "nested more than 100 levels"),
    ("half-surrogate", add_body(row("a", user='"\\ud800"')), "half of a surrogate pair"),
    ("trailing-garbage", add_body(row("a")) + b" and more", "trailing characters"),
    ("truncated", add_body(row("a"))[:-5], "looks truncated"),
    ("not-utf8", add_body(row("a", user='"caf\xe9"')).replace(b"\xc3\xa9", b"\xe9"), "not UTF-8"),
    ("utf16", json.dumps({"batch_requests": []}).encode("utf-16"), "not UTF-8"),
    ("utf8-bom", b"\xef\xbb\xbf" + add_body(row("a")), "BOM"),
]


@pytest.mark.parametrize(
    ("name", "body", "message"), REFUSED_ADD_BODIES, ids=[c[0] for c in REFUSED_ADD_BODIES]
)
def test_a_body_the_service_refuses_answers_400_and_the_connection_carries_on(
    emulator: EmulatorServer,
    client: httpx.Client,
    caplog: pytest.LogCaptureFixture,
    name: str,
    body: bytes,
    message: str,
) -> None:
    batch_id = client.post("/v1/batches", json={"name": name}).json()["batch_id"]
    headers = {"Content-Type": "application/json"}

    with caplog.at_level(logging.WARNING):
        answer = client.post(f"/v1/batches/{batch_id}/requests", content=body, headers=headers)
        create = client.post("/v1/batches", content=body, headers=headers)
        # The same keep-alive connection answers the next call: nothing was dropped.
        after = client.get(f"/v1/batches/{batch_id}")

    for refused in (answer, create):
        assert refused.status_code == 400, refused.text
        assert refused.json()["code"] == "Client specified an invalid argument"
        assert refused.json()["error"].startswith("Request body is not valid JSON: ")
        assert message in refused.json()["error"]
    assert after.status_code == 200 and after.json()["state"]["num_requests"] == 0
    assert complaints(caplog.records) == []


def test_nesting_up_to_the_limit_is_accepted_exactly(client: httpx.Client) -> None:
    batch_id = client.post("/v1/batches", json={"name": "deep"}).json()["batch_id"]
    deepest = row("a", tools=nested(BODY_ROOM), note='"[[[[ {{ ]] not structure"', stop="null")

    answer = client.post(f"/v1/batches/{batch_id}/requests", content=add_body(deepest))

    assert answer.status_code == 200, answer.text
    assert client.get(f"/v1/batches/{batch_id}").json()["state"]["num_requests"] == 1


def list_routes(client: httpx.Client) -> dict[str, str]:
    """Every list route, with enough in it for a second page."""
    batch_id = ""
    for index in range(3):
        batch_id = client.post("/v1/batches", json={"name": f"b{index}"}).json()["batch_id"]
        client.post("/v1/files", files={"file": (f"f{index}.jsonl", b"{}\n")})
    rows = b", ".join(row(f"r{index}") for index in range(3))
    assert client.post(f"/v1/batches/{batch_id}/requests", content=add_body(rows)).status_code == 200
    return {
        "batches": "/v1/batches",
        "files": "/v1/files",
        "requests": f"/v1/batches/{batch_id}/requests",
        "results": f"/v1/batches/{batch_id}/results",
    }


def test_an_invalid_pagination_token_answers_400_on_every_list_route(client: httpx.Client) -> None:
    routes = list_routes(client)
    tokens = {
        name: client.get(path, params={"limit": 1}).json()["pagination_token"]
        for name, path in routes.items()
    }
    assert all(tokens.values()), tokens

    for name, path in routes.items():
        others = [token for other, token in tokens.items() if other != name]
        edited = tokens[name][:-2] + ("AA" if not tokens[name].endswith("AA") else "BB")
        for bad in ["garbage", "!!!", "cm93LTA", "\u00e9t\u00e9", edited, *others]:
            answer = client.get(path, params={"limit": 1, "pagination_token": bad})
            assert answer.status_code == 400, (name, bad, answer.text)
            assert answer.json() == {
                "code": "Client specified an invalid argument",
                "error": "Invalid pagination_token",
            }
        # The token the route gave still reads its next page.
        assert client.get(path, params={"limit": 1, "pagination_token": tokens[name]}).status_code == 200


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def service(clock: ManualClock) -> BatchService:
    return BatchService(quiet_config(), clock)


def good_line(custom_id: str) -> bytes:
    return json.dumps(
        {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": CHAT}
    ).encode()


def raw_line(custom_id: str, body_tail: str) -> bytes:
    line = json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": CHAT})
    return (line[:-2] + ", " + body_tail + "}}").encode()


# (name, the bad line, what the cancel message says after "line 2: ")
REFUSED_LINES: list[tuple[str, bytes, str]] = [
    ("nan", raw_line("b", '"temperature": NaN'), "invalid JSON: NaN is not a JSON number"),
    ("infinity", raw_line("b", '"top_p": Infinity'), "invalid JSON: Infinity is not a JSON number"),
    (
        "out-of-range",
        raw_line("b", '"temperature": -1e400'),
        "invalid JSON: the number -1e400 is out of range",
    ),
    (
        "too-deep",
        raw_line("b", '"tools": ' + nested(MAX_JSON_DEPTH)),
        "invalid JSON: arrays and objects nested",
    ),
    ("pathological", raw_line("b", '"tools": ' + nested(100_000)), "invalid JSON: arrays and objects nested"),
    ("half-surrogate", raw_line("b", '"user": "\\udc00"'), "invalid JSON: a \\u escape holds half"),
    ("not-utf8", good_line("b").replace(b"Hello", b"H\xe9llo"), "invalid JSON: not UTF-8 text"),
    (
        "trailing-garbage",
        good_line("b") + b" trailing",
        "invalid JSON: trailing characters after the JSON value",
    ),
    (
        "two-objects",
        good_line("b") + good_line("c"),
        "invalid JSON: trailing characters after the JSON value",
    ),
    ("cut-short", good_line("b")[:-9], "invalid JSON: the text ends before its JSON value does"),
    ("not-an-object", b"[1, 2]", "expected a JSON object"),
]


@pytest.mark.parametrize(("name", "bad", "message"), REFUSED_LINES, ids=[c[0] for c in REFUSED_LINES])
def test_a_file_with_a_line_it_cannot_parse_ends_cancelled_by_xai(
    service: BatchService, clock: ManualClock, name: str, bad: bytes, message: str
) -> None:
    content = good_line("a") + b"\n" + bad + b"\n" + good_line("z") + b"\n"
    uploaded = service.upload_file(f"{name}.jsonl", content)
    batch_id = service.create_batch(name, uploaded["id"])["batch_id"]

    clock.advance(1.0)
    batch = service.get_batch(batch_id)

    assert batch["cancel_by_xai_message"].startswith(f"JSONL file validation failed: line 2: {message}")
    assert batch["cancel_time"] is not None and batch["state"]["num_requests"] == 0
    assert "truncated" not in batch["cancel_by_xai_message"] or name == "cut-short"


def test_trailing_garbage_on_the_last_line_is_not_called_truncated(
    service: BatchService, clock: ManualClock
) -> None:
    uploaded = service.upload_file("t.jsonl", good_line("a") + b"\n" + good_line("b") + b"}")
    batch_id = service.create_batch("t", uploaded["id"])["batch_id"]
    clock.advance(1.0)
    message = service.get_batch(batch_id)["cancel_by_xai_message"]
    assert message.startswith("JSONL file validation failed: line 2: invalid JSON: trailing characters")
    assert "truncated" not in message


def test_a_cut_last_line_is_called_truncated(service: BatchService, clock: ManualClock) -> None:
    uploaded = service.upload_file("t.jsonl", good_line("a") + b"\n" + good_line("b")[:30])
    batch_id = service.create_batch("t", uploaded["id"])["batch_id"]
    clock.advance(1.0)
    message = service.get_batch(batch_id)["cancel_by_xai_message"]
    assert (
        message.startswith("JSONL file validation failed: line 2: invalid JSON:")
        and "looks truncated" in message
    )


def test_a_byte_order_mark_opens_a_file_as_before(service: BatchService, clock: ManualClock) -> None:
    uploaded = service.upload_file("bom.jsonl", b"\xef\xbb\xbf" + good_line("a") + b"\r\n" + good_line("b"))
    batch_id = service.create_batch("bom", uploaded["id"])["batch_id"]
    clock.advance(1.0)
    batch = service.get_batch(batch_id)
    assert batch["cancel_by_xai_message"] is None and batch["state"]["num_requests"] == 2


def test_in_process_adds_refuse_what_json_cannot_carry(service: BatchService) -> None:
    batch_id = service.create_batch("in-process")["batch_id"]
    for value in (float("nan"), float("inf"), "\ud800"):
        item: dict[str, Any] = {
            "batch_request_id": "a",
            "batch_request": {"chat_get_completion": {**CHAT, "extra": value}},
        }
        with pytest.raises(ServiceError) as info:
            service.add_requests(batch_id, [item])
        assert info.value.status == 400 and "not JSON" in info.value.message
    assert service.get_batch(batch_id)["state"]["num_requests"] == 0


def test_a_head_request_gets_headers_only_and_the_connection_carries_on(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        head = client.head("/v1/batches")
        after = client.get("/v1/batches")

    assert head.status_code == 405 and head.content == b""
    assert int(head.headers["content-length"]) > 0  # the length the full answer would have
    assert after.status_code == 200
    assert complaints(caplog.records) == []
