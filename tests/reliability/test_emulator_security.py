"""The emulator guards itself like the real service.

The key is always required, it binds loopback by default, a page token it did not issue for a list
answers 400, and a file batch holding any line it cannot read ends cancelled by xAI, naming the line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import httpx
import psutil
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.constants import TEST_API_KEY

from airflow_provider_xai_batch.emulator import BatchService, EmulatorConfig, ManualClock, ServiceError
from airflow_provider_xai_batch.emulator.process import EmulatorProcess
from airflow_provider_xai_batch.emulator.strict_json import MAX_JSON_DEPTH

API_CALLS: list[tuple[str, str, Any]] = [
    ("GET", "/v1/batches", None),
    ("POST", "/v1/batches", {"name": "x"}),
    ("GET", "/v1/batches/batch_1", None),
    ("POST", "/v1/batches/batch_1/requests", {"batch_requests": []}),
    ("GET", "/v1/batches/batch_1/results", None),
    ("POST", "/v1/batches/batch_1:cancel", {}),
    ("GET", "/v1/files", None),
]
CONTROL_CALLS: list[tuple[str, str, Any]] = [
    ("GET", "/_emulator/stats", None),
    ("GET", "/_emulator/config", None),
    ("PATCH", "/_emulator/config", {"fault_rate": 1.0}),
    ("GET", "/_emulator/faults", None),
    ("POST", "/_emulator/faults", {"route": "*", "status": 500, "count": 100}),
    ("DELETE", "/_emulator/faults", None),
    ("POST", "/_emulator/reset", None),
    ("POST", "/_emulator/clock", {"advance": 86400 * 60}),
]
AUTH_HEADERS = {
    "no key": ({}, 401),
    "not bearer": ({"Authorization": f"Basic {TEST_API_KEY}"}, 401),
    "bearer without key": ({"Authorization": "Bearer"}, 401),
    "wrong key": ({"Authorization": "Bearer xai-wrong-key"}, 400),
    "key prefix": ({"Authorization": f"Bearer {TEST_API_KEY[:-1]}"}, 400),
}


@pytest.mark.parametrize("headers", list(AUTH_HEADERS))
@pytest.mark.parametrize(
    ("method", "path", "body"),
    API_CALLS + CONTROL_CALLS,
    ids=[f"{m} {p}" for m, p, _ in API_CALLS + CONTROL_CALLS],
)
def test_every_route_refuses_a_missing_or_wrong_key(
    emulator: Any, method: str, path: str, body: Any, headers: str
) -> None:
    batch_id = emulator.service.create_batch("kept")["batch_id"]
    sent, status = AUTH_HEADERS[headers]
    answer = httpx.request(method, emulator.url + path, json=body, headers=sent, timeout=10)

    assert answer.status_code == status
    message = answer.json()["error"]
    assert ("Incorrect API key provided" in message) == (status == 400)
    assert "xai-wrong-key" not in answer.text and TEST_API_KEY not in answer.text
    # Nothing changed behind the refusal: the batch is there, no fault is armed, settings kept.
    assert [batch["batch_id"] for batch in emulator.service.list_batches()["batches"]] == [batch_id]
    assert emulator.faults.pending() == [] and emulator.config.fault_rate == 0.0
    assert emulator.service.get_batch(batch_id)["cancel_time"] is None


def test_the_right_key_opens_the_control_routes(emulator: Any) -> None:
    auth = {"Authorization": f"Bearer {TEST_API_KEY}"}
    answer = httpx.patch(f"{emulator.url}/_emulator/config", json={"error_rate": 0.5}, headers=auth)
    assert answer.status_code == 200 and emulator.config.error_rate == 0.5
    assert "api_key" not in answer.json()  # the settings it shows leave the key out
    stats = httpx.get(f"{emulator.url}/_emulator/stats", headers=auth).json()
    assert TEST_API_KEY not in str(stats)


def listening_addresses(pid: int) -> set[str]:
    process = psutil.Process(pid)
    return {
        conn.laddr.ip for conn in process.net_connections(kind="inet") if conn.status == psutil.CONN_LISTEN
    }


def test_the_emulator_binds_loopback_by_default(emulator: Any) -> None:
    url = httpx.URL(emulator.url)
    assert url.host == "127.0.0.1"
    mine = {
        conn.laddr.ip
        for conn in psutil.Process(os.getpid()).net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == url.port
    }
    assert mine == {"127.0.0.1"}


def test_the_command_line_emulator_binds_loopback_and_requires_a_key() -> None:
    command = [sys.executable, "-m", "airflow_provider_xai_batch.emulator", "--port", "0"]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=60, env=_without_key_env())
    assert refused.returncode == 2 and "an API key is required" in refused.stderr

    with EmulatorProcess(TEST_API_KEY, host=None) as emulator:
        assert httpx.URL(emulator.url).host == "127.0.0.1"
        deadline = time.monotonic() + 10
        while not listening_addresses(emulator.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert listening_addresses(emulator.pid) == {"127.0.0.1"}
        assert httpx.get(f"{emulator.url}/v1/batches").status_code == 401
    assert emulator.returncode == 0  # stops cleanly on SIGTERM


def _without_key_env() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name != "XAI_EMULATOR_API_KEY"}


# -- what the emulator reads: page tokens and file lines ---------------------------------------------

CHAT = {"model": "grok-4.3", "messages": [{"role": "user", "content": "hi"}]}


def file_line(custom_id: str) -> bytes:
    return json.dumps({"custom_id": custom_id, "url": "/v1/chat/completions", "body": CHAT}).encode()


@st.composite
def unreadable_lines(draw: Any) -> bytes:
    """One line the service cannot take: not JSON, not strict JSON, or JSON that is no request."""
    good = file_line("bad")
    kind = draw(
        st.sampled_from(["nan", "inf", "range", "deep", "garbage", "surrogate", "utf8", "cut", "noise"])
    )
    if kind == "nan":
        return good.replace(b'"messages"', b'"temperature": NaN, "messages"')
    if kind == "inf":
        return good.replace(b'"messages"', b'"top_p": -Infinity, "messages"')
    if kind == "range":
        return good.replace(b'"messages"', b'"n": 1e400, "messages"')
    if kind == "deep":
        depth = draw(st.integers(MAX_JSON_DEPTH, 20_000))
        return good.replace(b'"messages"', b'"tools": ' + b"[" * depth + b"]" * depth + b', "messages"')
    if kind == "garbage":
        return good + draw(st.sampled_from([b" x", b"}", b"{}", b"]", b" // note"]))
    if kind == "surrogate":
        return good.replace(
            b'"hi"', b'"' + draw(st.sampled_from([b"\\ud800", b"\\udfff", b"\\ud83dx"])) + b'"'
        )
    if kind == "utf8":
        return good.replace(b"hi", draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"])))
    if kind == "cut":
        return good[: draw(st.integers(1, len(good) - 1))]
    noise = draw(st.binary(min_size=1, max_size=60).filter(lambda raw: b"\n" not in raw and raw.strip()))
    return noise


@settings(max_examples=200, deadline=None)
@given(
    before=st.integers(0, 6),
    after=st.integers(0, 6),
    bad=unreadable_lines(),
    blanks=st.lists(st.sampled_from([b"", b"  ", b"\r"]), max_size=3),
)
def test_a_file_with_any_unreadable_line_ends_cancelled_naming_that_line(
    before: int, after: int, bad: bytes, blanks: list[bytes]
) -> None:
    clock = ManualClock(1_788_000_000)
    service = BatchService(EmulatorConfig(api_key=TEST_API_KEY, create_rate_limit=0), clock)
    lines = [
        *blanks,
        *(file_line(f"a{i}") for i in range(before)),
        bad,
        *(file_line(f"z{i}") for i in range(after)),
    ]
    bad_line = len(blanks) + before + 1
    uploaded = service.upload_file("in.jsonl", b"\n".join(lines) + b"\n")
    batch_id = service.create_batch("file", uploaded["id"])["batch_id"]

    clock.advance(1.0)
    batch = service.get_batch(batch_id)

    # Cancelled by xAI, never left validating, and the message names the line as a person counts.
    assert batch["cancel_by_xai_message"].startswith(f"JSONL file validation failed: line {bad_line}: ")
    assert batch["cancel_time"] is not None and batch["state"]["num_requests"] == 0


@settings(max_examples=300, deadline=None)
@given(token=st.text(max_size=60).filter(bool))
def test_a_page_token_the_emulator_did_not_issue_for_that_list_is_refused(token: str) -> None:
    service = BatchService(EmulatorConfig(api_key=TEST_API_KEY, create_rate_limit=0, add_rate_limit=0))
    batch_id = service.create_batch("paged")["batch_id"]
    rows = [{"batch_request_id": f"r{i}", "batch_request": {"chat_get_completion": CHAT}} for i in range(3)]
    service.add_requests(batch_id, rows)
    service.create_batch("more")
    service.upload_file("a.jsonl", b"{}\n")
    service.upload_file("b.jsonl", b"{}\n")
    lists = {
        "batches": lambda page: service.list_batches(1, page),
        "files": lambda page: service.list_files(1, page),
        "requests": lambda page: service.list_batch_requests(batch_id, 1, page),
        "results": lambda page: service.list_results(batch_id, 1, page),
    }
    issued = {name: read(None)["pagination_token"] for name, read in lists.items()}

    for name, read in lists.items():
        if token == issued[name]:
            continue
        with pytest.raises(ServiceError) as info:
            read(token)
        assert (info.value.status, info.value.message) == (400, "Invalid pagination_token"), name
        read(issued[name])  # the real token still reads the next page
