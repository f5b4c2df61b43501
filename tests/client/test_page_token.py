"""The next page's token, read from the end of a result page, agrees with decoding the page whole."""

from __future__ import annotations

import json
from typing import Any

import httpx
import msgspec
import pytest
from support.constants import TEST_API_KEY

from airflow_provider_xai_batch.client import XAIBatchClient, protocol
from airflow_provider_xai_batch.client.base import ClientCore, tail_page_token
from airflow_provider_xai_batch.emulator import EmulatorServer

ROW = {
    "batch_request_id": "row-1",
    "batch_result": {"response": {"chat_get_completion": {"choices": [{"message": {"content": "hi"}}]}}},
}


def page(*members: str, rows: list[Any] | None = None) -> bytes:
    """A compact page: its results, then the given members (already JSON) in that order."""
    results = json.dumps(rows if rows is not None else [ROW], separators=(",", ":"))
    return ("{" + ",".join([f'"results":{results}', *members]) + "}").encode()


def full_decode(body: bytes) -> str | None:
    """The token as the whole page says it: what the tail must agree with whenever it answers."""
    payload = json.loads(body) if body else {}
    return protocol.parse_page(payload, "results")[1]


def core_token(body: bytes) -> str | None:
    return ClientCore("key")._page_token(httpx.Response(200, content=body))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (page('"pagination_token":"abc-123_=="'), "abc-123_=="),
        (page('"next_page_token":"n1"'), "n1"),
        (b'{"pagination_token":"only"}', "only"),
        # JSON's whitespace between members, and after the page.
        (
            b'{ "results" : [ ] ,\n  "pagination_token" : "spaced" \r\n}\n',
            "spaced",
        ),
        # Printable ASCII other than quotes and backslashes is taken as it stands.
        (page('"pagination_token":"a/b+c:d{e}f,g"'), "a/b+c:d{e}f,g"),
    ],
)
def test_tail_reads_a_plain_last_token(body: bytes, expected: str) -> None:
    assert tail_page_token(body) == expected == full_decode(body)
    assert core_token(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        page('"pagination_token":null'),
        page('"pagination_token":""'),
        page(),  # no token at all
        page('"next_page_token":null'),
        # Escaped characters: the full decode reads them.
        page('"pagination_token":"a\\"b"'),
        page('"pagination_token":"caf\\u00e9"'),
        page('"pagination_token":"x\\\\"'),
        # Not last: another member follows the token.
        page('"pagination_token":"abc"', '"cost_breakdown":{}'),
        # A number is not a plain string token.
        page('"pagination_token":42'),
        # Longer than the tail looked at.
        page('"pagination_token":"' + "t" * 1000 + '"'),
        # next_page_token last, but a pagination_token earlier, which wins.
        page('"pagination_token":"first"', '"next_page_token":"second"'),
        page('"pagination_token":null', '"next_page_token":"second"'),
        # The key inside the last result, not at the top level.
        page(rows=[{"batch_request_id": "r", "batch_result": {"pagination_token": "inner"}}]),
        page('"x":{"pagination_token":"inner"}'),
        # The key inside a result's text.
        page(rows=[{"batch_request_id": "r", "batch_result": {"error": ',"pagination_token":"fake"}'}}]),
        b"",
        b'{"pagination_token":"\xc3\xa9"}',
    ],
)
def test_tail_leaves_everything_else_to_the_full_decode(body: bytes) -> None:
    assert tail_page_token(body) is None
    assert core_token(body) == full_decode(body)


def test_a_page_that_is_not_an_object_has_no_tail_token() -> None:
    assert tail_page_token(b'["pagination_token","x"]') is None
    assert tail_page_token(b' {"pagination_token":"x"}') is None


def test_token_key_in_a_results_text_does_not_hide_the_real_token() -> None:
    text = 'ends with ,"pagination_token":"fake"}'
    body = page(
        '"pagination_token":"real"', rows=[{"batch_request_id": "r", "batch_result": {"error": text}}]
    )
    assert tail_page_token(body) == "real" == full_decode(body)


def test_a_repeated_key_reads_as_its_last_value() -> None:
    # msgspec and json both keep the last of a repeated key, as the tail does.
    body = page('"pagination_token":"old"', '"pagination_token":"new"')
    assert tail_page_token(body) == "new" == full_decode(body)
    assert msgspec.json.decode(body)["pagination_token"] == "new"


def test_next_page_token_alone_is_read_from_the_tail() -> None:
    body = page('"next_page_token":"n2"')
    assert tail_page_token(body) == "n2" == core_token(body)


def test_every_emulator_page_token_is_read_from_its_tail(emulator: EmulatorServer) -> None:
    requests = (
        {
            "custom_id": f"q-{i:03d}",
            "body": {"model": "grok-4.3", "messages": [{"role": "user", "content": "x"}]},
        }
        for i in range(7)
    )
    with XAIBatchClient(TEST_API_KEY, base_url=emulator.url) as client:
        batch = client.create_batch("tokens")
        client.add_requests(batch.batch_id, requests)
        bodies = list(client.iter_result_page_bodies(batch.batch_id, page_size=3))
    assert len(bodies) == 3
    tokens = [tail_page_token(body) for body in bodies]
    assert tokens == [full_decode(body) for body in bodies]
    assert tokens[0] and tokens[1] and tokens[2] is None
