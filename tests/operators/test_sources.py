"""The pure and local parts of reading requests: glob order, gzip detection, labels, validation."""

from __future__ import annotations

import gzip
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import pytest
from support.batch_requests import chat, expected_file_ids, native, openai_style, short
from support.jsonl import write_jsonl

from airflow_provider_xai_batch.client import XAIInputError
from airflow_provider_xai_batch.client.inputs import generated_request_id
from airflow_provider_xai_batch.sources import (
    as_uri,
    expand_sources,
    has_glob,
    is_gzip,
    iter_native,
    resolve_input,
    validate,
    xcom_source_label,
)


def uris(source: object) -> list[str]:
    return [item.uri for item in expand_sources(source)]


def test_globs_expand_sorted_with_recursive_double_star(tmp_path: Path) -> None:
    for name in ("b.jsonl", "a.jsonl", "sub/deeper/c.jsonl.gz", "sub/a.jsonl", "notes.txt"):
        write_jsonl(tmp_path / name, [short("x")])
    assert uris(f"{tmp_path}/**/*.jsonl*") == [
        f"file://{tmp_path}/a.jsonl",
        f"file://{tmp_path}/b.jsonl",
        f"file://{tmp_path}/sub/a.jsonl",
        f"file://{tmp_path}/sub/deeper/c.jsonl.gz",
    ]
    assert uris(f"file://{tmp_path}/?.jsonl") == [f"file://{tmp_path}/a.jsonl", f"file://{tmp_path}/b.jsonl"]


def test_a_list_keeps_its_order_and_reads_each_file_once(tmp_path: Path) -> None:
    for name in ("a.jsonl", "b.jsonl"):
        write_jsonl(tmp_path / name, [short("x")])
    assert uris([str(tmp_path / "b.jsonl"), f"{tmp_path}/*.jsonl"]) == [
        f"file://{tmp_path}/b.jsonl",
        f"file://{tmp_path}/a.jsonl",
    ]


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("{dir}/*.jsonl", "the pattern matches no file"),
        ("{dir}/missing.jsonl", "no such file"),
        ("{dir}", "this is a folder"),
    ],
)
def test_locations_that_name_no_file_are_input_errors(tmp_path: Path, location: str, reason: str) -> None:
    (tmp_path / "sub").mkdir()
    with pytest.raises(XAIInputError, match=reason) as caught:
        expand_sources(location.format(dir=tmp_path))
    assert caught.value.source.startswith(f"file://{tmp_path}")


def test_pure_naming_rules() -> None:
    assert has_glob("s3://b/**/x.jsonl") and has_glob("/in/part-?.jsonl") and not has_glob("s3://b/in.jsonl")
    assert (
        is_gzip("x.jsonl.GZ", b"{") and is_gzip("x.jsonl", b"\x1f\x8b\x08") and not is_gzip("x.jsonl", b"{")
    )
    assert as_uri("gs://b/x.jsonl") == "gs://b/x.jsonl"
    assert as_uri("relative/x.jsonl").startswith("file:///")


def test_xcom_labels_are_stable_and_distinct_per_task_and_map_index() -> None:
    def label(task_id: str, map_index: int) -> str:
        return xcom_source_label({"ti": SimpleNamespace(task_id=task_id, map_index=map_index)})

    assert label("add", -1) == "add.requests" == label("add", -1)
    assert len({label("add", -1), label("add", 0), label("add", 1), label("other", 0)}) == 4
    rows = [short("same prompt")]
    ids = {
        next(iter_native(resolve_input(requests=rows, source_label=label("add", index))))["batch_request_id"]
        for index in range(3)
    }
    assert len(ids) == 3


def test_gzip_is_detected_by_magic_bytes_without_the_suffix(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "packed.jsonl", [short("a", "a"), short("b", "b")], compress=True)
    summary = validate(resolve_input(source=str(tmp_path / "packed.jsonl")))
    assert summary.per_source == {f"file://{tmp_path}/packed.jsonl": 2}


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("in.jsonl", b"", "holds no requests"),
        ("in.jsonl", b"\n \n\r\n", "holds no requests"),
        ("in.jsonl.gz", gzip.compress(b""), "holds no requests"),
        ("in.jsonl.gz", b"{not gzip at all}", "gzip data is corrupt"),
        ("in.jsonl", b"\x1f\x8b\x08\x00garbage that is not deflate", "gzip data is corrupt"),
        ("in.jsonl.gz", gzip.compress(b'{"body": {}}\n' * 50)[:-12], "gzip data is corrupt"),
    ],
    ids=["empty", "blank-lines", "empty-gzip", "gz-suffix-not-gzip", "gzip-garbage", "truncated-gzip"],
)
def test_empty_and_corrupt_files_name_the_file(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(XAIInputError, match=reason) as caught:
        validate(resolve_input(source=str(path)))
    assert caught.value.source == f"file://{path}"


def test_validate_counts_per_file_and_iter_native_sends_each_repeat_once(tmp_path: Path) -> None:
    a = [native("one", "n-1"), openai_style("two"), short("three", "s-3")]
    b = [short("three", "s-3"), openai_style("four", url="/v1/responses")]
    write_jsonl(tmp_path / "a.jsonl", a)
    write_jsonl(tmp_path / "b.jsonl.gz", b, compress=True)
    resolved = resolve_input(source=f"{tmp_path}/*")
    summary = validate(resolved)
    uri_a, uri_b = f"file://{tmp_path}/a.jsonl", f"file://{tmp_path}/b.jsonl.gz"
    assert summary.per_source == {uri_a: 3, uri_b: 2}
    assert (summary.total, summary.unique) == (5, 4)
    sent = list(iter_native(resolved))
    assert [request["batch_request_id"] for request in sent] == [
        "n-1",
        generated_request_id(uri_a, "line 2"),
        "s-3",
        expected_file_ids(uri_b, b)[1],
    ]
    assert sent[-1]["batch_request"] == {"responses": {"model": "grok-4.3", "input": "four"}}


def test_xcom_lists_must_be_lists_of_objects() -> None:
    for value in ({"custom_id": "a", "body": chat("x")}, "[]", 3):
        with pytest.raises(XAIInputError, match="requests must be a list of request objects") as caught:
            resolve_input(requests=value, source_label="add.requests")
        assert caught.value.source == "add.requests"
    resolved = resolve_input(requests=(short("a"), None), source_label="add.requests")
    with pytest.raises(XAIInputError, match=r"^add\.requests, item 1: a request must be a JSON object"):
        validate(resolved)


def test_exactly_one_of_requests_or_source() -> None:
    with pytest.raises(XAIInputError, match="exactly one of"):
        resolve_input()
    with pytest.raises(XAIInputError, match="exactly one of"):
        resolve_input(requests=[], source="/x.jsonl")


def _peak_bytes_reading(path: Path) -> tuple[int, int]:
    resolved = resolve_input(source=str(path))
    tracemalloc.start()
    try:
        summary = validate(resolved)
        sent = sum(1 for _ in iter_native(resolved))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary.unique == sent
    return sent, peak


def test_memory_does_not_grow_with_the_input(tmp_path: Path) -> None:
    # Requests of ~2.5 kB: 2,000 of them make a 5 MB file, 8,000 a 20 MB one. Reading is one line
    # (in 1 MB chunks) at a time; only the id check keeps ~100 bytes per request.
    padding = "p" * 2500
    small = write_jsonl(tmp_path / "small.jsonl", (short(f"{i} {padding}") for i in range(2000)))
    large = write_jsonl(tmp_path / "large.jsonl", (short(f"{i} {padding}") for i in range(8000)))
    (small_count, small_peak), (large_count, large_peak) = map(_peak_bytes_reading, (small, large))
    assert (small_count, large_count) == (2000, 8000)
    extra_bytes = large.stat().st_size - small.stat().st_size
    assert large_peak - small_peak < extra_bytes / 10, (small_peak, large_peak, extra_bytes)
