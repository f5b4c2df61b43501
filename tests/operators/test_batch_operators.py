"""The operators' execute against the emulator, with a hand-made task context (no metadata database)."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pytest
from support.batch_requests import chat, native, openai_style, short
from support.emulator import all_batches
from support.emulator import held_request_ids as batch_request_ids
from support.jsonl import write_jsonl

from airflow_provider_xai_batch.client import XAIInputError
from airflow_provider_xai_batch.hooks.xai import XAIBatchHook
from airflow_provider_xai_batch.operators._resume import BATCH_ID_STATE_KEY, batch_name_for
from airflow_provider_xai_batch.operators.batch import (
    XAIAddBatchRequestsOperator,
    XAICancelBatchOperator,
    XAICreateBatchOperator,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


class StateStore:
    """The task state store's get/set, as Airflow >= 3.3 puts it in the context."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value


def context_for(
    task_id: str = "task", *, try_number: int = 1, map_index: int = -1, store: StateStore | None = None
) -> Context:
    ti = SimpleNamespace(
        dag_id="nightly", task_id=task_id, run_id="manual__1", map_index=map_index, try_number=try_number
    )
    context: dict[str, Any] = {"ti": ti}
    if store is not None:
        context["task_state_store"] = store
    return cast("Context", context)  # a stub task instance: what the operators read of it


def new_batch(name: str = "target") -> str:
    with closing(XAIBatchHook()) as hook:
        return hook.create_batch(name).batch_id


@pytest.fixture
def batch_id(xai_conn: Callable[..., str]) -> str:
    return new_batch()


def add(**kwargs: Any) -> dict[str, Any]:
    operator = XAIAddBatchRequestsOperator(task_id="add", **kwargs)
    result: dict[str, Any] = operator.execute(context_for("add"))
    return result


# -- bad input: the error names where, and nothing reaches the service -----------------------------

GOOD = [native("one", "good-1"), openai_style("two"), short("three", "good-3")]
BAD_CASES: dict[str, tuple[list[Any], int, str]] = {
    # case: (rows of b.jsonl, the bad line, what the message says)
    "malformed-json": ([short("a"), '{"custom_id": "x", "body": {"model": ', short("c")], 2, "invalid JSON"),
    "truncated-last-line": ([short("a"), short("b"), '{"custom_id": "x", "bo'], 3, "looks truncated"),
    "unaccepted-shape": (
        [short("a"), short("b"), {"prompt": "hi", "model": "grok-4.3"}],
        3,
        "not an accepted",
    ),
    "unknown-url": ([openai_style("a", "u-1", url="/v1/embeddings")], 1, "unknown endpoint url"),
    "missing-body": ([short("a"), {"custom_id": "nb", "url": "/v1/chat/completions"}], 2, "has no body"),
    "id-not-a-string": ([short("a"), {"custom_id": 7, "body": chat("x")}], 2, "id must be a string"),
    "id-too-long": ([{"custom_id": "x" * 300, "body": chat("x")}], 1, "characters long"),
    "duplicate-id-other-content": (
        [short("a"), short("b"), short("other text", "good-3")],
        3,
        "different content",
    ),
    "over-size-limit": ([short("a"), short("b" * 3000)], 2, "over the 2,000-byte limit"),
    "invalid-utf8": ([short("a"), b'{"custom_id": "x", "body": "\xff\xfe"}'], 2, "invalid UTF-8"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_line_names_file_and_line_and_nothing_is_added(
    case: str, tmp_path: Path, xai_conn: Callable[..., str], emulator: Any
) -> None:
    rows, line, reason = BAD_CASES[case]
    xai_conn(max_request_bytes=2000)
    batch_id = new_batch()
    write_jsonl(tmp_path / "a.jsonl", GOOD)
    # A file cut off mid-line has no final line end.
    write_jsonl(tmp_path / "b.jsonl", rows, final_newline=case != "truncated-last-line")
    write_jsonl(tmp_path / "c.jsonl", [short("last", "c-1")])
    with pytest.raises(XAIInputError, match=reason) as caught:
        add(batch_id=batch_id, source=f"{tmp_path}/*.jsonl")
    assert str(caught.value).startswith(f"file://{tmp_path}/b.jsonl, line {line}: ")
    assert emulator.calls("add_requests") == 0
    assert batch_request_ids(emulator, batch_id) == []


@pytest.mark.parametrize(
    ("setup", "source", "message"),
    [
        (
            lambda d: write_jsonl(d / "empty.jsonl", []),
            "{d}/*.jsonl",
            "file://{d}/empty.jsonl: the file holds no",
        ),
        (lambda d: None, "{d}/nothing-*.jsonl", "file://{d}/nothing-*.jsonl: the pattern matches no file"),
        (
            lambda d: (d / "x.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00\x00junk"),
            "{d}/*.jsonl*",
            "file://{d}/x.jsonl.gz: the gzip data is corrupt",
        ),
    ],
    ids=["empty-file", "glob-matching-nothing", "compressed-garbage"],
)
def test_bad_files_are_named_and_nothing_is_added(
    setup: Callable[[Path], object], source: str, message: str, tmp_path: Path, batch_id: str, emulator: Any
) -> None:
    write_jsonl(tmp_path / "a.jsonl", GOOD)
    setup(tmp_path)
    with pytest.raises(XAIInputError) as caught:
        add(batch_id=batch_id, source=source.format(d=tmp_path))
    assert str(caught.value).startswith(message.format(d=tmp_path))
    assert emulator.calls("add_requests") == 0


@pytest.mark.parametrize(
    ("requests", "message"),
    [
        (
            {"custom_id": "a", "body": chat("x")},
            "add.requests: requests must be a list of request objects, got dict",
        ),
        ('[{"custom_id": "a"}]', "add.requests: requests must be a list of request objects, got str"),
        ([short("a"), None], "add.requests, item 1: a request must be a JSON object, got NoneType"),
        ([short("a"), short("b"), {"custom_id": "c"}], "add.requests, item 2: the request has no body"),
    ],
    ids=["dict", "string", "none-item", "no-body"],
)
def test_bad_xcom_lists_name_the_index_and_nothing_is_added(
    requests: Any, message: str, batch_id: str, emulator: Any
) -> None:
    with pytest.raises(XAIInputError) as caught:
        add(batch_id=batch_id, requests=requests)
    assert str(caught.value).startswith(message)
    assert emulator.calls("add_requests") == 0


def test_exactly_one_of_requests_or_source_is_checked_when_the_dag_is_written() -> None:
    with pytest.raises(ValueError, match="exactly one of 'requests'"):
        XAIAddBatchRequestsOperator(task_id="add", batch_id="b")
    with pytest.raises(ValueError, match="exactly one of 'requests'"):
        XAIAddBatchRequestsOperator(task_id="add", batch_id="b", requests=[], source="/in/*.jsonl")


# -- adding and re-adding ---------------------------------------------------------------------------


def test_adding_the_same_input_again_adds_nothing_twice(
    tmp_path: Path, xai_conn: Callable[..., str], emulator: Any
) -> None:
    xai_conn(max_requests_per_call=2)
    batch_id = new_batch()
    write_jsonl(tmp_path / "a.jsonl", [*GOOD, short("four"), short("three", "good-3")])
    first = add(batch_id=batch_id, source=str(tmp_path / "a.jsonl"))
    ids = batch_request_ids(emulator, batch_id)
    second = add(batch_id=batch_id, source=str(tmp_path / "a.jsonl"))
    assert first == second == {"batch_id": batch_id, "added": 4}
    assert batch_request_ids(emulator, batch_id) == ids and len(ids) == 4
    assert emulator.calls("add_requests") == 4  # 2 calls of 2 requests, twice


# -- create and re-attach ---------------------------------------------------------------------------


def create(context: Context, name: str = "nightly-eval") -> str:
    batch_id: str = XAICreateBatchOperator(task_id="create", name=name).execute(context)
    return batch_id


def test_a_retry_re_attaches_through_the_task_state_store(
    xai_conn: Callable[..., str], emulator: Any
) -> None:
    store = StateStore()
    first = create(context_for("create", try_number=1, store=store))
    assert store.values == {BATCH_ID_STATE_KEY: first}
    assert emulator.calls("list_batches") == 0  # the first try has nothing to look for
    second = create(context_for("create", try_number=2, store=store))
    assert second == first
    assert emulator.calls("create_batch") == 1 and emulator.calls("list_batches") == 0
    assert [batch["name"] for batch in all_batches(emulator)] == [
        batch_name_for("nightly-eval", context_for("create"))
    ]


def test_a_retry_re_attaches_by_name_without_a_state_store(
    xai_conn: Callable[..., str], emulator: Any
) -> None:
    first = create(context_for("create", try_number=1))
    other_task = create(context_for("create", try_number=1, map_index=0))
    assert create(context_for("create", try_number=2)) == first
    assert create(context_for("create", try_number=3, map_index=0)) == other_task != first
    assert emulator.calls("create_batch") == 2 and len(all_batches(emulator)) == 2


def test_the_name_covers_a_crash_between_create_and_the_state_store_write(
    xai_conn: Callable[..., str], emulator: Any
) -> None:
    first = create(context_for("create", try_number=1))  # as if the store write never happened
    store = StateStore()
    assert create(context_for("create", try_number=2, store=store)) == first
    assert store.values == {BATCH_ID_STATE_KEY: first}
    assert emulator.calls("create_batch") == 1


def test_an_unusable_batch_is_replaced(xai_conn: Callable[..., str], emulator: Any) -> None:
    store = StateStore()
    first = create(context_for("create", try_number=1, store=store))
    cancelled = XAICancelBatchOperator(task_id="cancel", batch_id=first).execute(context_for("cancel"))
    assert cancelled["batch_id"] == first and cancelled["status"] == "cancelled"
    json.dumps(cancelled)  # XCom-ready
    second = create(context_for("create", try_number=2, store=store))
    assert second != first and store.values == {BATCH_ID_STATE_KEY: second}
    assert emulator.calls("create_batch") == 2
