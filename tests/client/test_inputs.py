from __future__ import annotations

import contextlib
import gzip
import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_xai_batch.client import XAIInputError
from airflow_provider_xai_batch.client.inputs import (
    MAX_REQUEST_DEPTH,
    POSITION_DIGITS,
    DuplicateIdChecker,
    encode_request,
    generated_request_id,
    iter_jsonl,
    normalise_jsonl,
    normalise_request,
    normalise_requests,
)

CHAT = {"model": "grok-4.3", "messages": [{"role": "user", "content": "hi"}]}


def test_the_three_shapes_normalise_to_the_same_native_request() -> None:
    native = {"batch_request_id": "q1", "batch_request": {"chat_get_completion": CHAT}}
    jsonl = {"custom_id": "q1", "method": "POST", "url": "/v1/chat/completions", "body": CHAT}
    short = {"custom_id": "q1", "body": CHAT}
    assert {json.dumps(normalise_request(r, source="s", position=0)) for r in (native, jsonl, short)} == {
        json.dumps(native)
    }


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("/v1/responses", "responses"),
        ("/v1/images/generations", "image_generation"),
        ("/v1/images/edits", "image_edit"),
        ("/v1/videos/generations", "video_generation"),
        ("/v1/videos", "video_generation"),
        ("/v1/videos/edits", "video_generation"),
        ("/v1/videos/extensions", "video_extension"),
        ("https://api.x.ai/v1/chat/completions", "chat_get_completion"),
    ],
)
def test_the_url_picks_the_kind(url: str, kind: str) -> None:
    body = {
        "model": "grok-imagine-image",
        "prompt": "a cat",
        "messages": [{"role": "user", "content": "a cat"}],
    }
    request = normalise_request({"custom_id": "a", "url": url, "body": body}, source="s", position=0)
    assert list(request["batch_request"]) == [kind]


def test_stream_is_stripped() -> None:
    request = normalise_request({"custom_id": "a", "body": {**CHAT, "stream": True}}, source="s", position=0)
    assert "stream" not in request["batch_request"]["chat_get_completion"]


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ("not a dict", "must be a JSON object"),
        ({"foo": 1}, "not an accepted request shape"),
        ({"custom_id": "a", "url": "/v1/embeddings", "body": CHAT}, "unknown endpoint url"),
        ({"custom_id": "a"}, "has no body"),
        ({"custom_id": "a", "body": []}, "must be a JSON object"),
        ({"custom_id": "a", "body": {"messages": [1]}}, "no 'model'"),
        ({"custom_id": "a", "body": {"model": "m"}}, "non-empty 'messages'"),
        ({"custom_id": 5, "body": CHAT}, "id must be a string"),
        ({"custom_id": "x" * 300, "body": CHAT}, "characters long"),
        ({"custom_id": "a", "method": "GET", "body": CHAT}, "unsupported method"),
        ({"batch_request_id": "a", "batch_request": {"embeddings": CHAT}}, "unknown request kind"),
        (
            {"batch_request_id": "a", "batch_request": {"chat_get_completion": CHAT, "responses": CHAT}},
            "exactly one",
        ),
    ],
)
def test_bad_requests_name_their_position(request_: object, message: str) -> None:
    with pytest.raises(XAIInputError, match=message) as info:
        normalise_request(request_, source="requests", position=3)
    assert str(info.value).startswith("requests, item 3: ")


def test_generated_ids_are_deterministic_unique_and_short() -> None:
    a = generated_request_id("s3://bucket/a/part-000.jsonl", "line 1")
    assert a == generated_request_id("s3://bucket/a/part-000.jsonl", "line 1")
    assert a != generated_request_id("s3://bucket/b/part-000.jsonl", "line 1")
    assert a != generated_request_id("s3://bucket/a/part-000.jsonl", "line 2")
    long_source = "s3://bucket/" + "very-long-name-" * 20 + ".jsonl"
    assert len(generated_request_id(long_source, "line 123456789")) <= 64


def test_generated_ids_pad_the_position_so_sorting_them_gives_input_order() -> None:
    assert generated_request_id("file:///d/in.jsonl", "line 7").endswith(
        "-line-" + "7".zfill(POSITION_DIGITS)
    )
    assert generated_request_id("requests", 12).endswith("-" + "12".zfill(POSITION_DIGITS))
    for source, positions in [("file:///d/in.jsonl", [f"line {n}" for n in (1, 2, 9, 10, 99, 100, 123456)])]:
        ids = [generated_request_id(source, position) for position in positions]
        assert sorted(ids) == ids
    indexes = [0, 1, 9, 10, 11, 100, 999_999, 1_000_000]
    ids = [generated_request_id("add_rows[3].requests", index) for index in indexes]
    assert sorted(ids) == ids and all(len(request_id) <= 64 for request_id in ids)


def test_a_non_list_is_refused_before_iteration() -> None:
    with pytest.raises(XAIInputError, match="must be a list"):
        list(normalise_requests({"custom_id": "a", "body": CHAT}))


def lines(*rows: bytes) -> io.BytesIO:
    return io.BytesIO(b"".join(rows))


def test_jsonl_accepts_bom_crlf_and_blank_lines() -> None:
    stream = lines(b"\xef\xbb\xbf" + json.dumps({"a": 1}).encode() + b"\r\n", b"\r\n", b"   \n", b'{"b": 2}')
    assert list(iter_jsonl(stream, source="f")) == [(1, {"a": 1}), (4, {"b": 2})]


def test_jsonl_reads_across_chunk_boundaries() -> None:
    rows = [json.dumps({"i": i, "pad": "y" * (i % 37)}).encode() + b"\n" for i in range(500)]
    parsed = list(iter_jsonl(lines(*rows), source="f", chunk_size=7))
    assert [obj["i"] for _, obj in parsed] == list(range(500))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"a": 1}\n{"a": \n', "line 2: invalid JSON"),
        (b'{"a": 1}\n\xff\xfe{"a": 2}\n', "line 2: invalid UTF-8"),
        (b'{"a": 1}\n{"a": 2', "line 2: invalid JSON.*truncated"),
        (b'{"a": 1}\n{"a": 2} trailing', "line 2: invalid JSON.*something follows the JSON object"),
        (b'{"a": 1}\n{"a": 2}}\n', "line 2: invalid JSON.*something follows the JSON object"),
        (b"[" * 100_000 + b"]" * 100_000, "line 1: the line nests arrays and objects too deeply"),
        (b'{"a": NaN}\n', "line 1: invalid JSON"),
        (b'{"a": 1e999}\n', "line 1: invalid JSON"),
    ],
)
def test_jsonl_errors_name_the_line(content: bytes, message: str) -> None:
    with pytest.raises(XAIInputError, match=message) as info:
        list(iter_jsonl(io.BytesIO(content), source="in.jsonl"))
    # Only a last line cut short is called truncated; garbage after a complete object is not.
    assert ("looks truncated" in str(info.value)) == ("truncated" in message)


def nested(depth: int) -> object:
    value: object = "deep"
    for _ in range(depth):
        value = [value]
    return value


def cyclic() -> dict[str, object]:
    loop: dict[str, object] = {}
    loop["again"] = loop
    return loop


# A request body's top sits 3 levels down in the native form (request, batch_request, body).
BODY_ROOM = MAX_REQUEST_DEPTH - 3

UNSENDABLE = [
    ({"temperature": float("nan")}, "body.temperature is nan: JSON has no NaN or Infinity"),
    ({"top_p": float("inf")}, "body.top_p is inf: JSON has no NaN or Infinity"),
    ({"extra": {"scores": [1.0, float("-inf")]}}, "body.extra.scores[1] is -inf"),
    ({"extra": {"weights": {float("nan")}}}, "is nan"),
    ({"user": "caf\udce9"}, "body.user holds a lone surrogate"),
    ({"metadata": {"\ud800key": 1}}, "a key in body.metadata holds a lone surrogate"),
    ({"seed": object()}, "body.seed is a object, which has no JSON form"),
    ({"seed": 1 + 2j}, "body.seed is a complex"),
    ({"tools": nested(BODY_ROOM + 1)}, f"more than {MAX_REQUEST_DEPTH} levels deep"),
    ({"tools": nested(100_000)}, f"more than {MAX_REQUEST_DEPTH} levels deep"),
    ({"tools": cyclic()}, f"more than {MAX_REQUEST_DEPTH} levels deep"),
]


@pytest.mark.parametrize(("extra", "message"), UNSENDABLE, ids=[m for _, m in UNSENDABLE])
def test_what_json_cannot_carry_exactly_is_refused_at_its_position(
    extra: dict[str, object], message: str
) -> None:
    request = normalise_request({"custom_id": "a", "body": {**CHAT, **extra}}, source="xcom", position=4)

    with pytest.raises(XAIInputError) as info:
        encode_request(request)

    assert (info.value.source, info.value.position) == ("xcom", "item 4")
    assert message in str(info.value), str(info.value)
    # The duplicate check encodes too: it may pass (input is checked before it) but never fails bare.
    with contextlib.suppress(XAIInputError):
        DuplicateIdChecker().check(request, source="xcom", position="item 4")


def test_a_lone_surrogate_in_the_id_is_refused() -> None:
    request = normalise_request({"custom_id": "id-\ud800", "body": CHAT}, source="s", position=0)
    with pytest.raises(XAIInputError, match="the request id holds a lone surrogate"):
        encode_request(request)


def test_a_half_surrogate_escape_in_a_line_is_named_as_such() -> None:
    line = b'{"custom_id": "s", "body": {"model": "m", "messages": ["\\ud83d"]}}'
    with pytest.raises(XAIInputError) as info:
        list(normalise_jsonl(io.BytesIO(line), source="file:///d/in.jsonl"))
    message = str(info.value)
    assert (
        message.startswith("file:///d/in.jsonl, line 1: invalid JSON")
        and "half of a surrogate pair" in message
    )
    assert "looks truncated" not in message


def test_what_json_carries_is_encoded_exactly() -> None:
    body = {
        **CHAT,
        "stop": None,
        "temperature": 0.1,
        "n": 2**70,
        "tools": nested(BODY_ROOM),
        "user": "caf\u00e9 \U0001f600",
    }
    request = normalise_request({"custom_id": "a", "body": body}, source="s", position=0)
    assert json.loads(encode_request(request)) == json.loads(json.dumps(request))


def test_jsonl_lines_without_ids_get_ids_from_file_and_line() -> None:
    data = b'{"body": %s}\n\n{"custom_id": "mine", "body": %s}\n' % (
        json.dumps(CHAT).encode(),
        json.dumps(CHAT).encode(),
    )
    ids = [r["batch_request_id"] for r in normalise_jsonl(io.BytesIO(data), source="file:///d/in.jsonl")]
    assert ids == [generated_request_id("file:///d/in.jsonl", "line 1"), "mine"]


def test_gzip_streams_can_be_read_through_gzip() -> None:
    raw = gzip.compress(b'{"custom_id": "a", "body": %s}\n' % json.dumps(CHAT).encode())
    with gzip.open(io.BytesIO(raw), "rb") as stream:
        assert [r["batch_request_id"] for r in normalise_jsonl(stream, source="f.jsonl.gz")] == ["a"]  # type: ignore[arg-type]


def test_duplicate_checker_allows_identical_repeats_and_refuses_conflicts() -> None:
    checker = DuplicateIdChecker()
    first = normalise_request({"custom_id": "a", "body": CHAT}, source="s", position=0)
    reordered = normalise_request(
        {"custom_id": "a", "body": dict(reversed(list(CHAT.items())))}, source="s", position=1
    )
    other = normalise_request({"custom_id": "a", "body": {**CHAT, "temperature": 0}}, source="s", position=2)
    assert checker.check(first, source="s", position="item 0") is True
    assert checker.check(reordered, source="s", position="item 1") is False
    with pytest.raises(XAIInputError, match="'a' appears earlier"):
        checker.check(other, source="t", position="line 9")


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8))
anything = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(value=anything)
def test_the_normaliser_either_returns_a_native_request_or_raises_input_error(value: object) -> None:
    try:
        request = normalise_request(value, source="fuzz", position=0)
    except XAIInputError as error:
        assert str(error).startswith("fuzz, item 0: ")  # noqa: PT017  (either outcome is checked)
    else:
        assert set(request) == {"batch_request_id", "batch_request"}
        ((kind, body),) = request["batch_request"].items()
        assert isinstance(body, dict) and isinstance(body.get("model"), str)


@settings(max_examples=100, deadline=None)
@given(prompts=st.lists(st.text(min_size=1, max_size=20), max_size=20))
def test_normalising_a_list_keeps_order_and_count(prompts: list[str]) -> None:
    requests = [{"body": {"model": "m", "messages": [{"role": "user", "content": p}]}} for p in prompts]
    out = list(normalise_requests(requests))
    assert [r["batch_request"]["chat_get_completion"]["messages"][0]["content"] for r in out] == prompts
    assert len({r["batch_request_id"] for r in out}) == len(prompts)
