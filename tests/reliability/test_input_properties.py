"""Properties of reading input that tests/client does not state yet.

tests/client/test_inputs.py covers the normaliser on arbitrary values and list order; these add
what files and retries rely on: any valid request list written as JSONL, with the byte order
marks, CRLF line ends and blank lines real files have, reads back as the same requests with the
same ids in order, however the bytes are chunked; reading twice gives the same ids; and
identical repeats collapse into one request while other content under a known id is refused.
Values JSON cannot carry exactly (NaN, Infinity, lone surrogates, objects without a JSON form) are
refused at their item wherever they hide, every JSON value is sent exactly as written, and
generated ids sort in input order.
"""

from __future__ import annotations

import io
import json
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_xai_batch.client.errors import XAIInputError
from airflow_provider_xai_batch.client.inputs import (
    encode_request,
    generated_request_id,
    normalise_jsonl,
    normalise_requests,
)
from airflow_provider_xai_batch.sources import iter_native, resolve_input, validate

SOURCE = "s3://bucket/prompts/part-0001.jsonl"
SURROGATES: tuple[Literal["Cs"]] = ("Cs",)  # not encodable as UTF-8
ids = st.text(st.characters(codec="utf-8", exclude_categories=SURROGATES), min_size=1, max_size=40).filter(
    str.strip
)
texts = st.text(max_size=30)


@st.composite
def requests(draw: Any) -> dict[str, Any]:
    """One valid request in one of the three shapes, with or without an id."""
    body = {"model": "grok-4.3", "messages": [{"role": "user", "content": draw(texts)}]}
    if draw(st.booleans()):
        body["temperature"] = draw(st.floats(0, 2, allow_nan=False))
    request_id = draw(st.none() | ids)
    shape = draw(st.sampled_from(["native", "jsonl", "short"]))
    if shape == "native":
        return {"batch_request_id": request_id or draw(ids), "batch_request": {"chat_get_completion": body}}
    row: dict[str, Any] = {"body": body}
    if shape == "jsonl":
        row.update(method="POST", url="/v1/chat/completions")
    if request_id is not None:
        row["custom_id"] = request_id
    return row


def unique_ids(rows: list[dict[str, Any]]) -> bool:
    given_ids = [row.get("batch_request_id") or row.get("custom_id") for row in rows]
    explicit = [value for value in given_ids if value is not None]
    return len(set(explicit)) == len(explicit)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(requests(), min_size=1, max_size=25).filter(unique_ids),
    bom=st.booleans(),
    line_ends=st.lists(st.sampled_from([b"\n", b"\r\n"]), min_size=25, max_size=25),
    blanks=st.lists(st.sampled_from([b"", b"\n", b"\r\n", b"  \n", b"\t\r\n\n"]), min_size=25, max_size=25),
    final_newline=st.booleans(),
    chunk_size=st.integers(1, 4096),
)
def test_a_jsonl_round_trip_keeps_every_request_and_id_in_order(
    rows: list[dict[str, Any]],
    bom: bool,
    line_ends: list[bytes],
    blanks: list[bytes],
    final_newline: bool,
    chunk_size: int,
) -> None:
    data = b"\xef\xbb\xbf" if bom else b""
    line_numbers: list[int] = []
    line = 1
    for index, row in enumerate(rows):
        data += blanks[index]
        line += blanks[index].count(b"\n")
        line_numbers.append(line)
        last = index == len(rows) - 1
        data += json.dumps(row, ensure_ascii=bool(index % 2)).encode() + (
            line_ends[index] if not last or final_newline else b""
        )
        line += 1

    def read() -> list[dict[str, Any]]:
        stream = io.BytesIO(data)
        original = stream.read
        stream.read = lambda size=-1: original(min(size, chunk_size) if size and size > 0 else chunk_size)  # type: ignore[method-assign]
        return list(normalise_jsonl(stream, source=SOURCE))

    from_file = read()
    expected_ids = [
        row.get("batch_request_id") or row.get("custom_id") or generated_request_id(SOURCE, f"line {number}")
        for row, number in zip(rows, line_numbers, strict=True)
    ]
    assert [request["batch_request_id"] for request in from_file] == expected_ids
    # The same requests as the list they were written from, apart from ids only lines can give.
    from_list = list(normalise_requests(rows, source=SOURCE))
    assert [request["batch_request"] for request in from_file] == [
        request["batch_request"] for request in from_list
    ]
    assert len(set(expected_ids)) == len(expected_ids)
    # Reading the same bytes again (a retry) gives the same ids.
    assert [request["batch_request_id"] for request in read()] == expected_ids


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(requests(), min_size=1, max_size=15).filter(unique_ids),
    repeats=st.lists(st.integers(0, 14), max_size=15),
)
def test_identical_repeats_collapse_to_the_first_occurrence(
    rows: list[dict[str, Any]], repeats: list[int]
) -> None:
    # A stable id for every row, so a repeated row is the same request wherever it appears.
    for index, row in enumerate(rows):
        if row.get("batch_request_id") is None and row.get("custom_id") is None:
            row["custom_id"] = f"row-{index}"
    with_repeats = rows + [rows[index % len(rows)] for index in repeats]
    resolved = resolve_input(requests=with_repeats)

    summary = validate(resolved)
    sent = [request["batch_request_id"] for request in iter_native(resolved)]

    assert summary.total == len(with_repeats) and summary.unique == len(rows)
    assert sent == [row.get("batch_request_id") or row.get("custom_id") for row in rows]


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(requests(), min_size=1, max_size=10).filter(unique_ids),
    where=st.integers(0, 10),
    text=texts,
)
def test_other_content_under_a_known_id_is_refused_at_its_position(
    rows: list[dict[str, Any]], where: int, text: str
) -> None:
    victim = rows[where % len(rows)]
    victim_id = victim.get("batch_request_id") or victim.get("custom_id")
    if victim_id is None:
        victim_id = victim["custom_id"] = "victim"
    changed = {"model": "grok-4.3", "messages": [{"role": "user", "content": text + " (changed)"}]}
    clash = {"custom_id": victim_id, "body": changed}
    position = len(rows)
    resolved = resolve_input(requests=[*rows, clash])

    with pytest.raises(XAIInputError) as info:
        validate(resolved)

    assert info.value.position == f"item {position}" and "different content" in str(info.value)


# Where a value can sit inside a body, as a list of keys and indexes below the body.
json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)
unsendable = st.sampled_from([float("nan"), float("inf"), float("-inf"), "lone \udc80", object(), 1j])


def plant(body: dict[str, Any], value: Any, path: list[Any]) -> list[str]:
    """Put ``value`` at the end of ``path`` (created as needed) in ``body``; return the path as text."""
    target: Any = body
    where = ["body"]
    for step in path[:-1]:
        target = target.setdefault(step, {})
        where.append(f".{step}")
    target[path[-1]] = value
    where.append(f".{path[-1]}")
    return where


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(requests(), min_size=1, max_size=8),
    victim=st.integers(0, 7),
    path=st.lists(st.sampled_from(["extra", "metadata", "tool", "x"]), min_size=1, max_size=4),
    value=unsendable,
    noise=json_values,
)
def test_a_value_json_cannot_carry_is_refused_at_its_item_whatever_else_is_there(
    rows: list[dict[str, Any]], victim: int, path: list[str], value: Any, noise: Any
) -> None:
    index = victim % len(rows)
    normalised = list(normalise_requests(rows, source=SOURCE))
    body = next(iter(normalised[index]["batch_request"].values()))
    body["noise"] = noise
    where = "".join(plant(body, value, path))

    sent = []
    with pytest.raises(XAIInputError) as info:  # noqa: PT012  (what was encoded before it counts)
        for request in normalised:
            sent.append(encode_request(request))

    assert info.value.source == SOURCE and info.value.position == f"item {index}"
    assert str(info.value).startswith(f"{SOURCE}, item {index}: {where} ")
    assert len(sent) == index  # everything before it encodes; nothing after it is reached


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(requests(), min_size=1, max_size=12), noise=st.lists(json_values, min_size=12, max_size=12)
)
def test_any_json_value_is_encoded_exactly_as_written(rows: list[dict[str, Any]], noise: list[Any]) -> None:
    for request, extra in zip(normalise_requests(rows, source=SOURCE), noise, strict=False):
        body = next(iter(request["batch_request"].values()))
        body["extra"] = extra
        assert json.loads(encode_request(request)) == json.loads(json.dumps(request, allow_nan=False))


@settings(max_examples=100, deadline=None)
@given(line_numbers=st.lists(st.integers(1, 10**9 - 1), min_size=2, max_size=30, unique=True))
def test_generated_ids_sort_in_input_order(line_numbers: list[int]) -> None:
    in_order = sorted(line_numbers)
    by_line = [generated_request_id(SOURCE, f"line {number}") for number in in_order]
    by_index = [generated_request_id("add_rows[2].requests", number) for number in in_order]
    assert sorted(by_line) == by_line and sorted(by_index) == by_index
    assert all(len(request_id) <= 64 for request_id in by_line + by_index)
