"""Fuzzing the emulator's HTTP and JSON handling over a real loopback socket.

Whatever bytes arrive (a request line, headers, a body, cut anywhere), the emulator answers with a
well-formed HTTP status that is not a 500, writes nothing to the log, and keeps serving: a call
with the right key answers 200 after every example. Bodies for the JSON routes are checked against
an independent reading (msgspec, RFC 8259 only, plus the nesting limit): the emulator says "not
valid JSON" exactly when that reading refuses the body. Hypothesis bounds the work by example
counts; nothing here is timed.

Every input sent is kept in :data:`TRIED`, so the number of malformed inputs tried is visible.
"""

from __future__ import annotations

import json
import logging
import re
import socket
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from emulator_support import API_KEY, quiet_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_xai_batch.emulator import EmulatorServer
from airflow_provider_xai_batch.emulator.strict_json import MAX_JSON_DEPTH

# Every request sent by the fuzz tests in this module, in order.
TRIED: list[bytes] = []

STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3}) [^\r\n]*\r\n")
# What h11 answers for a protocol feature it does not support (a transfer coding, an HTTP version).
PROTOCOL_STATUSES = {501, 505}
FUZZ = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Recorder(logging.Handler):
    """Keeps the emulator's records of WARNING and above, and any traceback, from any thread."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        # What the emulator or the event loop running it says; other libraries may log as they like.
        if record.exc_info or record.name.startswith(("airflow_provider_xai_batch", "asyncio")):
            self.records.append(record)


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    with quiet_server() as server:
        yield server


@pytest.fixture(scope="module")
def ids(emulator: EmulatorServer) -> dict[str, str]:
    """A batch with a request and an uploaded file, so that routes with ids reach their handlers."""
    service = emulator.service
    batch_id = service.create_batch("fuzz")["batch_id"]
    chat = {"model": "grok-4.3", "messages": [{"role": "user", "content": "hi"}]}
    service.add_requests(
        batch_id, [{"batch_request_id": "r", "batch_request": {"chat_get_completion": chat}}]
    )
    file_id = service.upload_file("fuzz.jsonl", b"{}\n")["id"]
    return {"batch": batch_id, "file": file_id}


@pytest.fixture
def log_records() -> Iterator[Recorder]:
    recorder = Recorder()
    root = logging.getLogger()
    root.addHandler(recorder)
    try:
        yield recorder
    finally:
        root.removeHandler(recorder)


def exchange(emulator: EmulatorServer, raw: bytes) -> bytes:
    """Send ``raw``, end the sending side, and read everything until the emulator closes."""
    TRIED.append(raw)
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=30) as sock:
        try:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # it answered and closed before reading everything (a 413): read what it said
        chunks = []
        while True:
            try:
                chunk = sock.recv(1 << 16)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def final_status(answer: bytes) -> tuple[int, bytes]:
    """The status and body of the answer, after any ``100 Continue``; fails when it is not HTTP."""
    while True:
        found = STATUS_LINE.match(answer)
        assert found is not None, answer[:200]
        head_end = answer.index(b"\r\n\r\n") + 4
        status = int(found.group(1))
        if status >= 200:
            return status, answer[head_end:]
        answer = answer[head_end:]


def assert_still_serving(emulator: EmulatorServer) -> None:
    status, body = final_status(
        exchange(emulator, f"GET /v1/batches?limit=1 HTTP/1.1\r\nHost: x\r\n{auth_line()}\r\n".encode())
    )
    assert status == 200, body[:200]
    TRIED.pop()  # the liveness call is not an input under test


def auth_line(key: str = API_KEY) -> str:
    return f"Authorization: Bearer {key}\r\n"


# -- strategies -------------------------------------------------------------------------------------

PATHS = [
    "/v1/batches",
    "/v1/batches/{batch}",
    "/v1/batches/{batch}:cancel",
    "/v1/batches/{batch}/requests",
    "/v1/batches/{batch}/results",
    "/v1/files",
    "/v1/files/{file}",
    "/v1/files/{file}/content",
    "/v1/batches/batch_missing",
    "/nowhere",
    "/",
    "*",
    "http://127.0.0.1/v1/batches",
]
QUERIES = st.one_of(
    st.just(""),
    st.builds(
        lambda key, value: f"?{key}={value}",
        st.sampled_from(["limit", "page_size", "pagination_token", "x"]),
        st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="#"), max_size=20),
    ),
    st.builds(lambda token: f"?pagination_token={token}", st.sampled_from(["%FF%FE", "%", "a%2", "=="])),
)
visible_bytes = st.binary(max_size=40)
tokens = st.text(st.characters(codec="ascii", categories=("L", "N")), min_size=1, max_size=12)


@st.composite
def targets(draw: Any) -> bytes:
    if draw(st.integers(0, 19)) == 0:
        return draw(visible_bytes)
    path = draw(st.sampled_from(PATHS)) + draw(QUERIES)
    return path.encode()


@st.composite
def bodies(draw: Any) -> bytes:
    """JSON documents, near-JSON and noise: what a careless client or a broken proxy sends."""
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return draw(st.binary(max_size=200))
    if kind == 1:
        return draw(json_texts())
    if kind == 2:
        depth = draw(st.sampled_from([MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 5_000]))
        return b'{"batch_requests": ' + b"[" * depth + b"]" * depth * draw(st.integers(0, 1)) + b"}"
    if kind == 3:
        return b"--b\r\n" + draw(st.binary(max_size=80)) + b"\r\n--b--\r\n"
    return b""


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**60), 2**60),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
# Pieces no JSON encoder writes but people and other languages' encoders do.
ODD_TOKENS = [
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"1e999",
    b"-1e400",
    b'"\\ud800"',
    b'"\\udc00x"',
    b'"\\ud83d\\ude00"',
    b"'single'",
    b"undefined",
    b"01",
    b"1.",
    b".5",
    b'"tab\there"',
    b"[1,]",
    b"{,}",
    b"\xef\xbb\xbf{}",
    b"\xff",
]


@st.composite
def json_texts(draw: Any) -> bytes:
    """A JSON object for a route's body, with at most one odd piece spliced into it somewhere."""
    value = {"name": "fuzz", "batch_requests": [draw(json_values)], "extra": draw(json_values)}
    text = json.dumps(value, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        odd = draw(st.sampled_from(ODD_TOKENS))
        text = text.replace(b'"extra": ', b'"extra": ' + odd + b', "was": ', 1)
    if draw(st.integers(0, 5)) == 0:
        text += draw(st.sampled_from([b" x", b"}", b"\n{}", b"\x00"]))
    if draw(st.integers(0, 5)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    return text


printable = st.text(st.characters(codec="ascii", exclude_characters="\r\n", min_codepoint=32), max_size=40)


@st.composite
def header_blocks(draw: Any, body: bytes, well_formed: bool) -> bytes:
    """Header lines; ``well_formed`` keeps them valid HTTP so the call reaches the handlers."""
    lines: list[bytes] = []
    if well_formed or draw(st.integers(0, 9)) > 0:
        lines.append(b"Host: 127.0.0.1")
    auth = draw(st.sampled_from(["right", "right", "right", "wrong", "none", "garbled"]))
    if auth == "right":
        lines.append(auth_line().strip().encode())
    elif auth == "wrong":
        lines.append(b"Authorization: Bearer xai-wrong")
    elif auth == "garbled":
        lines.append(b"Authorization: " + draw(printable).encode())
    content_types = [
        b"application/json",
        b"multipart/form-data; boundary=b",
        b"multipart/form-data",
        b"text/plain",
    ]
    lines.append(b"Content-Type: " + draw(st.sampled_from(content_types)))
    framings = ["length", "chunked", "expect"]
    if not well_formed:
        framings += ["wrong-length", "garbage-length", "odd-coding", "none"]
    framing = draw(st.sampled_from(framings))
    if framing in ("length", "expect"):
        lines.append(b"Content-Length: %d" % len(body))
        if framing == "expect":
            lines.append(b"Expect: 100-continue")
    elif framing == "wrong-length":
        lines.append(b"Content-Length: %d" % (len(body) + draw(st.sampled_from([-1, 1, 1000, 10**12]))))
    elif framing == "garbage-length":
        lines.append(
            b"Content-Length: " + draw(st.sampled_from([b"-1", b"abc", b"1, 2", b"", b"+5", b"0x10"]))
        )
    elif framing == "chunked":
        lines.append(b"Transfer-Encoding: chunked")
    elif framing == "odd-coding":
        lines.append(
            b"Transfer-Encoding: "
            + draw(st.sampled_from([b"gzip, chunked", b"identity", b"chunked, chunked"]))
        )
    for _ in range(draw(st.integers(0, 2))):
        value = (
            draw(printable).encode()
            if well_formed
            else draw(visible_bytes).replace(b"\r", b"").replace(b"\n", b"")
        )
        lines.append(draw(tokens).encode() + b": " + value)
    if not well_formed and draw(st.integers(0, 9)) == 0:
        lines.append(draw(visible_bytes))  # a header line that is not one
    return b"".join(line + b"\r\n" for line in lines)


def chunked(body: bytes) -> bytes:
    return (b"%x\r\n" % len(body) + body + b"\r\n" if body else b"") + b"0\r\n\r\n"


@st.composite
def raw_requests(draw: Any, ids: dict[str, str]) -> bytes:
    """Mostly valid HTTP carrying odd content, sometimes anything at all, cut anywhere."""
    well_formed = draw(st.integers(0, 9)) < 6
    methods = [b"GET", b"GET", b"POST", b"POST", b"POST", b"DELETE", b"PATCH", b"PUT", b"HEAD", b"OPTIONS"]
    if well_formed:
        method = draw(st.sampled_from(methods))
        version = b"HTTP/1.1"
    else:
        method = draw(st.one_of(st.sampled_from(methods), tokens.map(str.encode), visible_bytes))
        version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1x", b""]))
    target = (
        draw(targets()).replace(b"{batch}", ids["batch"].encode()).replace(b"{file}", ids["file"].encode())
    )
    body = draw(bodies())
    headers = draw(header_blocks(body, well_formed))
    payload = chunked(body) if b"Transfer-Encoding: chunked" in headers else body
    raw = method + b" " + target + b" " + version + b"\r\n" + headers + b"\r\n" + payload
    if not well_formed and draw(st.integers(0, 4)) == 0:
        raw = raw[: draw(st.integers(1, len(raw)))]  # the connection ends anywhere
    if not well_formed and draw(st.integers(0, 9)) == 0:
        raw = raw.replace(b"\r\n", b"\n")  # bare line feeds
    return raw


# -- the tests ------------------------------------------------------------------------------------------


def test_any_bytes_get_a_well_formed_answer_and_the_emulator_keeps_serving(
    emulator: EmulatorServer, ids: dict[str, str], log_records: Recorder
) -> None:
    before = len(TRIED)
    statuses: set[int] = set()

    @FUZZ
    @given(raw=raw_requests(ids))
    def one_request(raw: bytes) -> None:
        status, _ = final_status(exchange(emulator, raw))
        statuses.add(status)
        assert status < 500 or status in PROTOCOL_STATUSES, raw[:300]
        assert_still_serving(emulator)

    one_request()

    tried = len(TRIED) - before
    print(f"\nraw HTTP requests tried: {tried}; statuses seen: {sorted(statuses)}")
    assert tried >= 100
    assert [record.getMessage() for record in log_records.records] == []


def strict_reading_refuses(body: bytes) -> bool:
    """An independent reading: RFC 8259 JSON (msgspec) nested at most MAX_JSON_DEPTH levels."""
    if not body.strip():
        return False  # an empty body is an empty object to every route
    try:
        value = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return True
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


# The routes that read a JSON body (cancel takes none and ignores what it is sent).
JSON_ROUTES = ["/v1/batches", "/v1/batches/{batch}/requests"]


def test_json_bodies_are_refused_exactly_when_they_are_not_json(
    emulator: EmulatorServer, ids: dict[str, str], log_records: Recorder
) -> None:
    before = len(TRIED)
    refused = 0

    @FUZZ
    @given(body=st.one_of(json_texts(), bodies()), route=st.sampled_from(JSON_ROUTES))
    def one_body(body: bytes, route: str) -> None:
        nonlocal refused
        path = route.replace("{batch}", ids["batch"])
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth_line()}Content-Type: application/json\r\n"
        raw = head.encode() + b"Content-Length: %d\r\n\r\n" % len(body) + body

        status, answer = final_status(exchange(emulator, raw))

        assert status < 500, answer[:300]
        said_not_json = status == 400 and json.loads(answer)["error"].startswith(
            "Request body is not valid JSON"
        )
        assert said_not_json == strict_reading_refuses(body), (body[:300], answer[:300])
        if status != 200:
            assert set(json.loads(answer)) == {"code", "error"}
        refused += said_not_json
        assert_still_serving(emulator)

    one_body()

    tried = len(TRIED) - before
    print(f"\nJSON bodies tried: {tried}, refused as not JSON: {refused}")
    assert tried >= 100 and 0 < refused < tried
    assert [record.getMessage() for record in log_records.records] == []
