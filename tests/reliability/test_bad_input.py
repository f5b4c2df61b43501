"""Malformed input, through every entry point, fails before anything is sent, naming where it is.

Entry points: a request list (typically an XCom) given to ``XAIAddBatchRequestsOperator(requests=)``,
JSONL files given to ``XAIAddBatchRequestsOperator(source=)``, and ``XAIBatchClient.add_requests``.
Each case must raise ``XAIInputError`` naming the source (list label or file URI) and the position
(list item or line), and the emulator must not have received a single add call.
What real files contain and users expect to work (byte order mark, CRLF, blank lines) is accepted.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from reliability_support import jsonl_request
from support.batch_requests import chat as chat_body
from support.batch_requests import native_request
from support.constants import TEST_API_KEY
from support.dags import run_dag_file, task_states

from airflow_provider_xai_batch.client import XAIBatchClient
from airflow_provider_xai_batch.client.errors import XAIInputError
from airflow_provider_xai_batch.client.inputs import MAX_REQUEST_DEPTH, generated_request_id
from airflow_provider_xai_batch.hooks.xai import XAIBatchHook
from airflow_provider_xai_batch.operators.batch import XAIAddBatchRequestsOperator

OVER_25_MB = "x" * 25_000_001
GOOD = jsonl_request("good-1", "fine")
LIST_LABEL = "add_rows.requests"
# Deeper than any parser's recursion limit, and just over the nesting an add call may carry (a
# request's body sits three levels down in its native form, two more in the add call).
PATHOLOGICAL_DEPTH = 100_000
JUST_TOO_DEEP = MAX_REQUEST_DEPTH - 3 + 1


def with_body(request_id: str | None, **extra: Any) -> dict[str, Any]:
    """A JSONL-style request whose body carries ``extra`` beside a valid chat."""
    row = jsonl_request(request_id, "fine")
    row["body"] = {**row["body"], **extra}
    return row


def nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = [value]
    return value


def cyclic() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["again"] = loop
    return loop


def raw_line(request_id: str, body_tail: bytes) -> bytes:
    """A JSONL line written by hand, for what ``json.dumps`` would not write."""
    return (
        b'{"custom_id": "' + request_id.encode() + b'", "body": {"model": "grok-4.3", '
        b'"messages": [{"role": "user", "content": "hi"}], ' + body_tail + b"}}"
    )


def line(row: Any) -> bytes:
    return row if isinstance(row, bytes) else json.dumps(row).encode()


def jsonl(*rows: Any, end: bytes = b"\n") -> bytes:
    return b"\n".join(line(row) for row in rows) + end


@dataclass(frozen=True)
class Case:
    """One malformed input: what to give, and what the error must name."""

    name: str
    entry: str  # "files", "xcom" or "client"
    value: Any  # files: {file name: bytes}; xcom/client: the request list (or non-list)
    reason: str  # a fragment of the reason
    source: str | None = None  # files: the file name the error names; else the label
    position: str | None = None  # "line 3", "item 2"; None when the input as a whole is wrong
    location: str | None = None  # files: what to pass as source, relative to the folder (default: all)


FILE_CASES = [
    Case(
        "invalid-json",
        "files",
        {"a.jsonl": jsonl(GOOD, b'{"custom_id": "b" "body": {}}', GOOD)},
        "invalid JSON",
        "a.jsonl",
        "line 2",
    ),
    Case(
        "truncated-last-line",
        "files",
        {"a.jsonl": jsonl(GOOD, GOOD, b'{"custom_id": "c", "body": {"mo', end=b"")},
        "truncated",
        "a.jsonl",
        "line 3",
    ),
    Case(
        "invalid-utf8",
        "files",
        {"a.jsonl": jsonl(GOOD, b'{"custom_id": "\xff\xfe", "body": {}}')},
        "invalid UTF-8",
        "a.jsonl",
        "line 2",
    ),
    Case(
        "line-is-an-array",
        "files",
        {"a.jsonl": jsonl(b"[1, 2, 3]")},
        "must be a JSON object",
        "a.jsonl",
        "line 1",
    ),
    Case(
        "line-is-a-string",
        "files",
        {"a.jsonl": jsonl(GOOD, b'"just text"')},
        "must be a JSON object",
        "a.jsonl",
        "line 2",
    ),
    Case(
        "unknown-shape",
        "files",
        {"a.jsonl": jsonl({"prompt": "hi", "model": "grok-4.3"})},
        "not an accepted request shape",
        "a.jsonl",
        "line 1",
    ),
    Case(
        "unknown-url",
        "files",
        {"a.jsonl": jsonl(GOOD, {"custom_id": "e", "url": "/v1/embeddings", "body": chat_body("x")})},
        "unknown endpoint url",
        "a.jsonl",
        "line 2",
    ),
    Case(
        "unsupported-method",
        "files",
        {"a.jsonl": jsonl({**GOOD, "custom_id": "g", "method": "GET"})},
        "unsupported method",
        "a.jsonl",
        "line 1",
    ),
    Case(
        "missing-body",
        "files",
        {"a.jsonl": jsonl({"custom_id": "m", "url": "/v1/chat/completions"})},
        "no body",
        "a.jsonl",
        "line 1",
    ),
    Case(
        "body-wrong-type",
        "files",
        {"a.jsonl": jsonl({"custom_id": "w", "body": "hello"})},
        "body must be a JSON object",
        "a.jsonl",
        "line 1",
    ),
    Case(
        "body-without-model",
        "files",
        {"a.jsonl": jsonl({"custom_id": "n", "body": {"messages": [1]}})},
        "'model'",
        "a.jsonl",
        "line 1",
    ),
    Case(
        "chat-without-messages",
        "files",
        {"a.jsonl": jsonl({"custom_id": "n", "body": {"model": "grok-4.3"}})},
        "'messages'",
        "a.jsonl",
        "line 1",
    ),
    Case(
        "id-too-long",
        "files",
        {"a.jsonl": jsonl(GOOD, jsonl_request("i" * 300, "long id"))},
        "characters long",
        "a.jsonl",
        "line 2",
    ),
    Case(
        "duplicate-id-other-content",
        "files",
        {"a.jsonl": jsonl(jsonl_request("dup", "one"), GOOD, jsonl_request("dup", "two"))},
        "different content",
        "a.jsonl",
        "line 3",
    ),
    Case(
        "duplicate-id-across-files",
        "files",
        {"a.jsonl": jsonl(jsonl_request("dup", "one")), "b.jsonl": jsonl(GOOD, jsonl_request("dup", "two"))},
        "different content",
        "b.jsonl",
        "line 2",
    ),
    Case(
        "oversize-request",
        "files",
        {"a.jsonl": jsonl(GOOD, jsonl_request("big", OVER_25_MB))},
        "over the 24,999,979-byte limit",
        "a.jsonl",
        "line 2",
    ),
    Case(
        "bad-line-in-a-later-file",
        "files",
        {"a.jsonl": jsonl(*[jsonl_request(f"a-{i}", "ok") for i in range(50)]), "b.jsonl": jsonl(GOOD, b"{")},
        "invalid JSON",
        "b.jsonl",
        "line 2",
    ),
    Case(
        "nan-literal",
        "files",
        {"a.jsonl": jsonl(GOOD, raw_line("n", b'"temperature": NaN'))},
        "invalid JSON",
        "a.jsonl",
        "line 2",
    ),
    Case(
        "infinity-literal",
        "files",
        {"a.jsonl": jsonl(raw_line("i", b'"top_p": -Infinity'))},
        "invalid JSON",
        "a.jsonl",
        "line 1",
    ),
    Case(
        "number-beyond-double-range",
        "files",
        {"a.jsonl": jsonl(GOOD, GOOD, raw_line("r", b'"temperature": 1e999'))},
        "invalid JSON",
        "a.jsonl",
        "line 3",
    ),
    Case(
        "pathologically-deep-line",
        "files",
        {
            "a.jsonl": jsonl(
                GOOD, raw_line("d", b'"tools": ' + b"[" * PATHOLOGICAL_DEPTH + b"]" * PATHOLOGICAL_DEPTH)
            )
        },
        "nests arrays and objects",
        "a.jsonl",
        "line 2",
    ),
    Case(
        "line-nested-just-too-deep",
        "files",
        {"a.jsonl": jsonl(GOOD, with_body("j", tools=nested(JUST_TOO_DEEP)))},
        f"more than {MAX_REQUEST_DEPTH} levels deep",
        "a.jsonl",
        "line 2",
    ),
    Case(
        "half-surrogate-escape",
        "files",
        {"a.jsonl": jsonl(GOOD, raw_line("h", b'"user": "\\ud83d"'))},
        "half of a surrogate pair",
        "a.jsonl",
        "line 2",
    ),
    Case(
        "trailing-garbage",
        "files",
        {"a.jsonl": jsonl(GOOD, line(GOOD) + b" trailing words", GOOD)},
        "something follows the JSON object",
        "a.jsonl",
        "line 2",
    ),
    Case(
        "trailing-garbage-on-the-last-line",
        "files",
        {"a.jsonl": jsonl(GOOD, line(GOOD) + b"}", end=b"")},
        "something follows the JSON object",
        "a.jsonl",
        "line 2",
    ),
    Case("empty-file", "files", {"a.jsonl": b""}, "holds no requests", "a.jsonl"),
    Case("only-blank-lines", "files", {"a.jsonl": b"\n  \r\n\n"}, "holds no requests", "a.jsonl"),
    Case("gz-that-is-not-gzip", "files", {"a.jsonl.gz": jsonl(GOOD)}, "gzip data is corrupt", "a.jsonl.gz"),
    Case(
        "truncated-gzip",
        "files",
        {"a.jsonl.gz": gzip.compress(jsonl(*[GOOD] * 200))[:60]},
        "corrupt or truncated",
        "a.jsonl.gz",
    ),
    Case(
        "gzip-holding-garbage",
        "files",
        {"a.jsonl.gz": gzip.compress(b"\x00\x01binary\xff\n")},
        "line 1",
        "a.jsonl.gz",
        "line 1",
    ),
    Case(
        "glob-matches-nothing",
        "files",
        {"a.jsonl": jsonl(GOOD)},
        "matches no file",
        "*.parquet",
        location="*.parquet",
    ),
    Case(
        "missing-file",
        "files",
        {"a.jsonl": jsonl(GOOD)},
        "no such file",
        "missing.jsonl",
        location="missing.jsonl",
    ),
    Case("folder-not-file", "files", {"sub/a.jsonl": jsonl(GOOD)}, "this is a folder", "sub", location="sub"),
]


# What JSON cannot carry exactly: values that would change silently or fail bare in the encoder.
UNSENDABLE: list[tuple[str, list[Any], str, str]] = [
    ("nan", [GOOD, with_body("n", temperature=float("nan"))], "body.temperature is nan", "item 1"),
    ("infinity", [with_body("i", top_p=float("inf"))], "body.top_p is inf", "item 0"),
    (
        "negative-infinity-in-a-message",
        [GOOD, GOOD, with_body("m", messages=[{"role": "user", "content": "x", "weight": float("-inf")}])],
        "body.messages[0].weight is -inf",
        "item 2",
    ),
    (
        "arbitrary-object",
        [with_body("o", seed=object())],
        "body.seed is a object, which has no JSON form",
        "item 0",
    ),
    (
        "lone-surrogate",
        [GOOD, with_body("s", user="caf\udce9")],
        "body.user holds a lone surrogate",
        "item 1",
    ),
    (
        "lone-surrogate-in-the-id",
        [jsonl_request("id-\ud800", "x")],
        "the request id holds a lone surrogate",
        "item 0",
    ),
    ("pathological-nesting", [with_body("d", tools=nested(PATHOLOGICAL_DEPTH))], "levels deep", "item 0"),
    ("nesting-just-too-deep", [GOOD, with_body("j", tools=nested(JUST_TOO_DEEP))], "levels deep", "item 1"),
    ("self-containing", [with_body("c", metadata=cyclic())], "levels deep", "item 0"),
]

# Airflow walks an operator's arguments recursively (templating, XCom references) before the task
# runs, so these never reach the provider as a task argument; the client meets them as they are.
BEYOND_AIRFLOW = {"pathological-nesting", "self-containing"}

XCOM_CASES = [
    Case("dict-not-list", "xcom", {"custom_id": "a", "body": chat_body("x")}, "must be a list", LIST_LABEL),
    Case("templated-string", "xcom", json.dumps([GOOD]), "a templated string stays a string", LIST_LABEL),
    Case("integer", "xcom", 42, "got int", LIST_LABEL),
    Case("item-not-an-object", "xcom", [GOOD, GOOD, "hello"], "must be a JSON object", LIST_LABEL, "item 2"),
    Case("item-none", "xcom", [GOOD, None], "got NoneType", LIST_LABEL, "item 1"),
    Case(
        "two-kinds",
        "xcom",
        [
            {
                "batch_request_id": "k",
                "batch_request": {"chat_get_completion": chat_body("x"), "responses": {}},
            }
        ],
        "exactly one kind key",
        LIST_LABEL,
        "item 0",
    ),
    Case(
        "unknown-kind",
        "xcom",
        [GOOD, {"batch_request_id": "k", "batch_request": {"embeddings": chat_body("x")}}],
        "unknown request kind",
        LIST_LABEL,
        "item 1",
    ),
    Case(
        "id-not-a-string",
        "xcom",
        [{"custom_id": 7, "body": chat_body("x")}],
        "must be a string",
        LIST_LABEL,
        "item 0",
    ),
    Case(
        "empty-id", "xcom", [{"custom_id": " ", "body": chat_body("x")}], "id is empty", LIST_LABEL, "item 0"
    ),
    Case("id-too-long", "xcom", [native_request("i" * 256, "x")], "characters long", LIST_LABEL, "item 0"),
    Case(
        "duplicate-id-other-content",
        "xcom",
        [native_request("d", "one"), GOOD, native_request("e", "x"), native_request("d", "two")],
        "different content",
        LIST_LABEL,
        "item 3",
    ),
    Case(
        "oversize-request",
        "xcom",
        [GOOD, native_request("big", OVER_25_MB)],
        "over the 24,999,979-byte limit",
        LIST_LABEL,
        "item 1",
    ),
    Case(
        "unknown-url",
        "xcom",
        [{"custom_id": "u", "url": "/v2/chat", "body": chat_body("x")}],
        "unknown endpoint url",
        LIST_LABEL,
        "item 0",
    ),
    Case("missing-body", "xcom", [GOOD, {"custom_id": "m"}], "no body", LIST_LABEL, "item 1"),
    *(
        Case(name, "xcom", value, reason, LIST_LABEL, where)
        for name, value, reason, where in UNSENDABLE
        if name not in BEYOND_AIRFLOW
    ),
    Case(
        "deep-nesting", "xcom", [GOOD, with_body("d", tools=nested(150))], "levels deep", LIST_LABEL, "item 1"
    ),
]

CLIENT_CASES = [
    Case("dict-not-list", "client", {"custom_id": "a", "body": chat_body("x")}, "must be a list", "prompts"),
    Case("string-not-list", "client", "[]", "must be a list", "prompts"),
    Case(
        "bad-item-in-a-stream",
        "client",
        [GOOD if i != 4 else {"body": []} for i in range(9)],
        "body must be a JSON object",
        "prompts",
        "item 4",
    ),
    Case(
        "oversize-request",
        "client",
        [GOOD, native_request("big", OVER_25_MB)],
        "over the 25,000,000-byte limit",
        "prompts",
        "item 1",
    ),
    Case(
        "unknown-url",
        "client",
        [{"custom_id": "u", "url": "/v1/embeddings", "body": chat_body("x")}],
        "unknown endpoint url",
        "prompts",
        "item 0",
    ),
    Case("id-too-long", "client", [native_request("i" * 300, "x")], "characters long", "prompts", "item 0"),
    Case(
        "unknown-shape",
        "client",
        [GOOD, {"messages": []}],
        "not an accepted request shape",
        "prompts",
        "item 1",
    ),
    *(Case(name, "client", value, reason, "prompts", where) for name, value, reason, where in UNSENDABLE),
]

CORPUS = FILE_CASES + XCOM_CASES + CLIENT_CASES


class TaskInstanceStub:
    task_id, map_index = "add_rows", -1


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def add_through(case: Case, emulator: Any, folder: Path, batch_id: str) -> Callable[[], Any]:
    if case.entry == "files":
        write_files(folder, case.value)
        location = f"file://{folder}/{case.location or '*'}"
        task = XAIAddBatchRequestsOperator(task_id="add_rows", batch_id=batch_id, source=location)
        return lambda: task.execute({"ti": TaskInstanceStub()})  # type: ignore[typeddict-item]
    if case.entry == "xcom":
        task = XAIAddBatchRequestsOperator(task_id="add_rows", batch_id=batch_id, requests=case.value)
        return lambda: task.execute({"ti": TaskInstanceStub()})  # type: ignore[typeddict-item]

    def add_directly() -> int:
        # Lists are handed over as generators: the client streams, it never sees the whole input.
        requests = (item for item in case.value) if isinstance(case.value, list) else case.value
        with XAIBatchClient(TEST_API_KEY, base_url=emulator.url) as client:
            return client.add_requests(batch_id, requests, source="prompts")

    return add_directly


def test_the_corpus_covers_every_entry_point() -> None:
    per_entry = {entry: sum(case.entry == entry for case in CORPUS) for entry in ("files", "xcom", "client")}
    print(f"\nmalformed inputs: {len(CORPUS)} cases, {per_entry}")
    assert len(CORPUS) >= 20 and min(per_entry.values()) >= 5
    assert len({(case.entry, case.name) for case in CORPUS}) == len(CORPUS)
    # Each class of value JSON cannot carry exactly stays in the corpus for every entry point.
    names = {entry: {case.name for case in CORPUS if case.entry == entry} for entry in per_entry}
    assert {name for name, *_ in UNSENDABLE} <= names["client"]
    assert {name for name, *_ in UNSENDABLE} - BEYOND_AIRFLOW <= names["xcom"]
    assert {"nan-literal", "infinity-literal", "pathologically-deep-line", "trailing-garbage"} <= names[
        "files"
    ]


@pytest.mark.parametrize("case", CORPUS, ids=[f"{case.entry}-{case.name}" for case in CORPUS])
def test_malformed_input_is_refused_before_any_add_call(
    case: Case, emulator: Any, xai_connection: str, tmp_path: Path
) -> None:
    batch_id = emulator.service.create_batch("bad-input")["batch_id"]
    folder = tmp_path / "in"
    folder.mkdir()
    add = add_through(case, emulator, folder, batch_id)

    with pytest.raises(XAIInputError) as info:
        add()

    error = info.value
    message = str(error)
    assert case.reason in message, message
    expected_source = f"file://{folder}/{case.source}" if case.entry == "files" else case.source
    assert error.source == expected_source, message
    assert error.position == case.position, message
    assert message.startswith(
        f"{expected_source}, {case.position}: " if case.position else f"{expected_source}: "
    )
    assert emulator.calls("add_requests") == 0
    assert emulator.service.get_batch(batch_id)["state"]["num_requests"] == 0


@pytest.mark.parametrize(("name", "requests", "reason", "where"), UNSENDABLE, ids=[u[0] for u in UNSENDABLE])
def test_the_hook_refuses_what_json_cannot_carry_before_any_add_call(
    name: str, requests: list[Any], reason: str, where: str, emulator: Any, xai_connection: str
) -> None:
    batch_id = emulator.service.create_batch(f"hook-{name}")["batch_id"]

    with pytest.raises(XAIInputError) as info:
        XAIBatchHook(xai_conn_id=xai_connection).add_requests(batch_id, iter(requests))

    assert (info.value.source, info.value.position) == ("requests", where)
    assert reason in str(info.value)
    assert emulator.calls("add_requests") == 0
    assert emulator.service.get_batch(batch_id)["state"]["num_requests"] == 0


BOM = b"\xef\xbb\xbf"


REAL_FILE_FORMS: dict[str, Callable[[list[bytes]], bytes]] = {
    "bom": lambda rows: BOM + b"\n".join(rows) + b"\n",
    "crlf": lambda rows: b"\r\n".join(rows) + b"\r\n",
    "blank-lines": lambda rows: b"\n\n".join(rows) + b"\n\n  \n",
    "no-final-newline": lambda rows: b"\n".join(rows),
    "bom-crlf-blank": lambda rows: BOM + b"\r\n\r\n".join(rows) + b"\r\n",
    "gzip-bom-crlf": lambda rows: gzip.compress(BOM + b"\r\n".join(rows) + b"\r\n"),
}


@pytest.mark.parametrize("name", list(REAL_FILE_FORMS))
def test_what_real_files_contain_is_accepted(
    name: str, emulator: Any, xai_connection: str, tmp_path: Path
) -> None:
    transform = REAL_FILE_FORMS[name]
    rows = [jsonl_request(f"ok-{i}", f"prompt {i}") for i in range(5)] + [jsonl_request(None, "no id")]
    path = tmp_path / ("in.jsonl.gz" if name.startswith("gzip") else "in.jsonl")
    path.write_bytes(transform([line(row) for row in rows]))
    batch_id = emulator.service.create_batch("good-input")["batch_id"]
    task = XAIAddBatchRequestsOperator(task_id="add_rows", batch_id=batch_id, source=f"file://{path}")

    result = task.execute({"ti": TaskInstanceStub()})  # type: ignore[typeddict-item]

    assert result == {"batch_id": batch_id, "added": 6}
    held = [
        row["batch_request_id"]
        for row in emulator.service.list_batch_requests(batch_id)["batch_request_metadata"]
    ]
    assert held[:5] == [f"ok-{i}" for i in range(5)]
    # The id-less line's id comes from the file and its line number: stable across retries.
    content = path.read_bytes()
    text = gzip.decompress(content) if path.suffix == ".gz" else content
    number = next(n for n, raw in enumerate(text.split(b"\n"), start=1) if b"no id" in raw)
    assert held[5] == generated_request_id(f"file://{path}", f"line {number}")
    assert emulator.calls("add_requests") == 1


BAD_INPUT_DAG = """
import pathlib
import pendulum
from airflow.sdk import DAG, task
from airflow_provider_xai_batch.operators.batch import XAIAddBatchRequestsOperator

ERRORS = pathlib.Path({errors!r})


class RecordingAdd(XAIAddBatchRequestsOperator):
    # Keeps the failure text where the test can read it, on every Airflow version.
    def execute(self, context):
        try:
            return super().execute(context)
        except Exception as error:
            (ERRORS / self.task_id).write_text(f"{{type(error).__name__}}: {{error}}")
            raise


with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    @task
    def make_requests():
        return {{"custom_id": "a", "body": {{"model": "grok-4.3", "messages": []}}}}

    @task
    def make_list():
        return [{good!r}, {good!r} | {{"custom_id": "x", "url": "/v1/embeddings"}}]

    RecordingAdd(task_id="add_dict", batch_id={batch_id!r}, requests=make_requests())
    RecordingAdd(task_id="add_list", batch_id={batch_id!r}, requests=make_list())
    RecordingAdd(task_id="add_files", batch_id={batch_id!r}, source={source!r})
"""


def test_in_a_dag_run_the_task_fails_with_the_source_and_position(
    emulator: Any, xai_connection: str, dags_folder: Path, tmp_path: Path
) -> None:
    batch_id = emulator.service.create_batch("bad-input-dag")["batch_id"]
    errors = tmp_path / "errors"
    errors.mkdir()
    bad_file = tmp_path / "in" / "prompts.jsonl"
    bad_file.parent.mkdir()
    bad_file.write_bytes(jsonl(GOOD, GOOD, b'{"custom_id": "x", "body": {"model": "grok-4.3", "mess'))
    source = BAD_INPUT_DAG.format(
        dag_id="bad_input", errors=str(errors), good=GOOD, batch_id=batch_id, source=f"file://{bad_file}"
    )

    run: Any = run_dag_file(source, "bad_input", dags_folder)

    states = task_states(run)
    assert {states["add_dict"], states["add_list"], states["add_files"]} == {"failed"}, states
    assert (errors / "add_dict").read_text() == (
        "XAIBatchInputError: add_dict.requests: requests must be a list of request objects, got dict"
    )
    assert (
        (errors / "add_list")
        .read_text()
        .startswith("XAIBatchInputError: add_list.requests, item 1: unknown endpoint url '/v1/embeddings'")
    )
    assert (
        (errors / "add_files")
        .read_text()
        .startswith(f"XAIBatchInputError: file://{bad_file}, line 3: invalid JSON")
    )
    assert "truncated" in (errors / "add_files").read_text()
    assert emulator.calls("add_requests") == 0
