from __future__ import annotations

import json
import random
import re
from typing import Any

import pytest
from emulator_support import API_KEY

from airflow_provider_xai_batch.emulator import BatchService, EmulatorConfig, ManualClock, ServiceError


def chat(content: str = "Hello there", model: str = "grok-4.3", **extra: Any) -> dict[str, Any]:
    return {
        "chat_get_completion": {"model": model, "messages": [{"role": "user", "content": content}], **extra}
    }


def row(request_id: str | None, content: str = "Hello there", **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"batch_request": chat(content, **extra)}
    if request_id is not None:
        item["batch_request_id"] = request_id
    return item


def counters(service: BatchService, batch_id: str) -> dict[str, int]:
    return service.get_batch(batch_id)["state"]


def all_results(service: BatchService, batch_id: str, limit: int = 100) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    token = None
    while True:
        page = service.list_results(batch_id, limit, token)
        rows += page["results"]
        token = page["pagination_token"]
        if token is None:
            return rows


def refused(status: int, call: Any, *args: Any) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        call(*args)
    assert caught.value.status == status
    return caught.value


def test_a_new_inline_batch_has_the_wire_shape_and_no_status(service: BatchService) -> None:
    batch = service.create_batch("nightly-eval")

    assert re.fullmatch(r"batch_[0-9a-f-]{36}", batch["batch_id"])
    assert batch["name"] == "nightly-eval"
    assert batch["create_time"] == "2026-08-29"
    assert batch["expire_time"] == "2026-09-28"
    assert batch["cancel_time"] is None and batch["cancel_by_xai_message"] is None
    assert batch["state"] == {
        "num_requests": 0,
        "num_pending": 0,
        "num_success": 0,
        "num_error": 0,
        "num_cancelled": 0,
    }
    assert "status" not in batch and "input_file_id" not in batch
    assert "cost_breakdown" in batch  # an extra field clients must ignore
    assert API_KEY not in str(batch)


def test_counters_follow_the_processing_rate_on_the_clock(config: EmulatorConfig, clock: ManualClock) -> None:
    config.processing_rate = 2.0
    service = BatchService(config, clock)
    batch_id = service.create_batch("b")["batch_id"]
    service.add_requests(batch_id, [row(f"r{n}") for n in range(5)])

    assert counters(service, batch_id) == {
        "num_requests": 5,
        "num_pending": 5,
        "num_success": 0,
        "num_error": 0,
        "num_cancelled": 0,
    }
    clock.advance(1.0)
    assert counters(service, batch_id)["num_success"] == 2
    assert counters(service, batch_id)["num_pending"] == 3
    clock.advance(1.5)
    state = counters(service, batch_id)
    assert (state["num_success"], state["num_pending"]) == (5, 0)


def test_requests_added_later_queue_behind_earlier_ones(config: EmulatorConfig, clock: ManualClock) -> None:
    config.processing_rate = 1.0
    service = BatchService(config, clock)
    batch_id = service.create_batch("b")["batch_id"]
    service.add_requests(batch_id, [row("a"), row("b")])
    clock.advance(0.5)
    service.add_requests(batch_id, [row("c")])
    clock.advance(2.4)  # t = 2.9: a (1.0) and b (2.0) done, c waits until 3.0
    assert counters(service, batch_id)["num_success"] == 2
    clock.advance(0.1)
    assert counters(service, batch_id)["num_success"] == 3


def test_processing_rate_zero_finishes_at_once(service: BatchService) -> None:
    batch_id = service.create_batch("b")["batch_id"]
    service.add_requests(batch_id, [row(f"r{n}") for n in range(3)])
    assert counters(service, batch_id)["num_success"] == 3


def test_a_changed_rate_applies_to_work_still_pending(config: EmulatorConfig, clock: ManualClock) -> None:
    config.processing_rate = 0.001
    service = BatchService(config, clock)
    batch_id = service.create_batch("b")["batch_id"]
    service.add_requests(batch_id, [row(f"r{n}") for n in range(3)])
    clock.advance(5)
    assert counters(service, batch_id)["num_pending"] == 3
    config.processing_rate = 0
    assert counters(service, batch_id)["num_success"] == 3


def test_readding_identical_content_is_accepted_and_adds_nothing(service: BatchService) -> None:
    batch_id = service.create_batch("b")["batch_id"]
    assert service.add_requests(batch_id, [row("r1"), row("r2")]) == {}
    # Same content with keys in another order and a meaningless `stream` flag is still the same request.
    body = {"messages": [{"content": "Hello there", "role": "user"}], "stream": True, "model": "grok-4.3"}
    assert (
        service.add_requests(
            batch_id, [{"batch_request_id": "r1", "batch_request": {"chat_get_completion": body}}]
        )
        == {}
    )
    assert service.add_requests(batch_id, [row("r2"), row("r3")]) == {}
    assert counters(service, batch_id)["num_requests"] == 3


def test_readding_an_id_with_other_content_is_refused_with_412(service: BatchService) -> None:
    batch_id = service.create_batch("b")["batch_id"]
    service.add_requests(batch_id, [row("r1")])
    error = refused(412, service.add_requests, batch_id, [row("r1", "Something else")])
    assert error.message == "batch_request_id 'r1' content differs from originally submitted"
    assert error.code == "The system is not in a state required for the operation's execution"


def test_an_add_call_is_atomic(service: BatchService) -> None:
    batch_id = service.create_batch("b")["batch_id"]
    error = refused(
        400, service.add_requests, batch_id, [row("ok-1"), row("bad", model="grok-2"), row("ok-2")]
    )
    assert error.message == "Model grok-2 is not supported for batch processing."
    assert error.code == "Client specified an invalid argument"
    service.add_requests(batch_id, [row("r1")])
    refused(412, service.add_requests, batch_id, [row("new"), row("r1", "changed")])
    assert counters(service, batch_id)["num_requests"] == 1


def test_duplicate_ids_inside_one_call(service: BatchService) -> None:
    batch_id = service.create_batch("b")["batch_id"]
    refused(412, service.add_requests, batch_id, [row("x"), row("x", "other")])
    assert counters(service, batch_id)["num_requests"] == 0
    service.add_requests(batch_id, [row("x"), row("x")])
    assert counters(service, batch_id)["num_requests"] == 1


def test_missing_ids_are_invented_by_the_service(service: BatchService) -> None:
    batch_id = service.create_batch("b")["batch_id"]
    service.add_requests(batch_id, [row(None), row(None)])
    ids = [
        item["batch_request_id"] for item in service.list_batch_requests(batch_id)["batch_request_metadata"]
    ]
    assert len(set(ids)) == 2
    assert all(re.fullmatch(r"batch_request_[0-9a-f-]{36}", request_id) for request_id in ids)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"batch_request": {}}, "exactly one of"),
        ({"batch_request": {**chat(), "responses": {"model": "grok-4.3"}}}, "exactly one of"),
        ({"batch_request": {"completion": {"model": "grok-4.3"}}}, "Unknown batch_request kind"),
        ({"batch_request": {"chat_get_completion": {"messages": []}}}, "model is required"),
        ({"batch_request_id": 7, "batch_request": chat()}, "must be a string"),
        ({"batch_request_id": "r"}, "batch_request is required"),
    ],
)
def test_malformed_requests_are_refused(service: BatchService, bad: dict[str, Any], message: str) -> None:
    batch_id = service.create_batch("b")["batch_id"]
    assert message in refused(400, service.add_requests, batch_id, [bad]).message


def test_adding_to_a_cancelled_batch_is_forbidden(service: BatchService) -> None:
    batch_id = service.create_batch("b")["batch_id"]
    service.cancel_batch(batch_id)
    error = refused(403, service.add_requests, batch_id, [row("r1")])
    assert error.code == "The caller does not have permission to execute the specified operation"


def test_unknown_batch_answers_404(service: BatchService) -> None:
    error = refused(404, service.get_batch, "batch_nope")
    assert error.code == "Some requested entity was not found"
    refused(404, service.add_requests, "batch_nope", [row("r")])
    refused(404, service.list_results, "batch_nope")
    refused(404, service.cancel_batch, "batch_nope")


def test_rate_limits_are_rolling_windows_on_the_clock(config: EmulatorConfig, clock: ManualClock) -> None:
    config.create_rate_limit = 2
    config.add_rate_limit = 3
    config.add_rate_window_seconds = 30
    service = BatchService(config, clock)
    first = service.create_batch("a")["batch_id"]
    second = service.create_batch("b")["batch_id"]
    error = refused(429, service.create_batch, "c")
    assert (error.code, error.message) == ("Some resource has been exhausted", "Rate limit exceeded")
    clock.advance(1.0)
    service.create_batch("c")

    # Add calls are counted across all batches, including refused ones that got through validation.
    service.add_requests(first, [row("r1")])
    service.add_requests(second, [row("r1")])
    service.add_requests(first, [row("r2")])
    refused(429, service.add_requests, second, [row("r2")])
    clock.advance(29.0)
    refused(429, service.add_requests, second, [row("r2")])
    clock.advance(1.0)
    service.add_requests(second, [row("r2")])
    assert counters(service, second)["num_requests"] == 2


def test_results_come_sorted_by_id_across_opaque_pages(service: BatchService) -> None:
    batch_id = service.create_batch("b")["batch_id"]
    ids = [f"row-{n:04d}" for n in range(25)]
    shuffled = ids[:]
    random.Random(3).shuffle(shuffled)
    for start in range(0, 25, 10):
        service.add_requests(batch_id, [row(request_id) for request_id in shuffled[start : start + 10]])

    first = service.list_results(batch_id, 10)
    assert [item["batch_request_id"] for item in first["results"]] == ids[:10]
    token = first["pagination_token"]
    assert token and "row-0009" not in token
    assert [item["batch_request_id"] for item in all_results(service, batch_id, limit=7)] == ids
    last = service.list_results(batch_id, 5, service.list_results(batch_id, 20)["pagination_token"])
    assert len(last["results"]) == 5 and last["pagination_token"] is None


def test_a_page_token_stays_valid_while_adds_go_on(service: BatchService) -> None:
    batch_id = service.create_batch("b")["batch_id"]
    service.add_requests(batch_id, [row(f"b-{n}") for n in range(4)])
    page = service.list_results(batch_id, 2)
    service.add_requests(batch_id, [row("a-0"), row("c-0")])
    rest = service.list_results(batch_id, 100, page["pagination_token"])
    assert [item["batch_request_id"] for item in rest["results"]] == ["b-2", "b-3", "c-0"]


def test_results_hold_only_finished_requests(config: EmulatorConfig, clock: ManualClock) -> None:
    config.processing_rate = 1.0
    service = BatchService(config, clock)
    batch_id = service.create_batch("b")["batch_id"]
    service.add_requests(batch_id, [row("z"), row("y"), row("x")])
    assert service.list_results(batch_id)["results"] == []
    clock.advance(2.0)
    page = service.list_results(batch_id)
    assert [item["batch_request_id"] for item in page["results"]] == ["y", "z"]
    assert page["pagination_token"] is None


def test_page_limits(service: BatchService) -> None:
    batch_id = service.create_batch("b")["batch_id"]
    service.add_requests(batch_id, [row(f"r{n:04d}") for n in range(1200)])
    assert len(service.list_results(batch_id)["results"]) == 100
    assert len(service.list_results(batch_id, 5000)["results"]) == 1000
    refused(400, service.list_results, batch_id, 0)
    refused(400, service.list_results, batch_id, 10, "%%%not-a-token")


def test_failures_found_while_processing(config: EmulatorConfig, clock: ManualClock) -> None:
    config.processing_rate = 10.0
    service = BatchService(config, clock)
    batch_id = service.create_batch("b")["batch_id"]
    service.add_requests(
        batch_id,
        [
            row("ok"),
            row("marker", "Please [[fail]] here"),
            row("tokens", max_tokens=-5),
            row("zero", max_completion_tokens=0),
        ],
    )
    # Accepted by the add call; nothing has failed yet.
    assert counters(service, batch_id)["num_error"] == 0
    clock.advance(1.0)
    assert counters(service, batch_id)["num_error"] == 3
    errors = {
        item["batch_request_id"]: item["batch_result"].get("error") for item in all_results(service, batch_id)
    }
    assert errors["ok"] is None
    assert "[[fail]]" in errors["marker"]
    assert errors["tokens"] == "Maximum number of tokens max_tokens must be positive but max_tokens = -5"
    assert errors["zero"] == (
        "Maximum number of tokens max_completion_tokens must be positive but max_completion_tokens = 0"
    )


def test_error_rate_is_deterministic_per_request(config: EmulatorConfig, clock: ManualClock) -> None:
    config.error_rate = 0.3
    config.seed = 7
    service = BatchService(config, clock)
    batch_id = service.create_batch("b")["batch_id"]
    service.add_requests(batch_id, [row(f"r{n:04d}") for n in range(1000)])
    state = counters(service, batch_id)
    assert 200 < state["num_error"] < 400
    assert state["num_success"] + state["num_error"] == 1000
    failed = [item for item in all_results(service, batch_id, 1000) if "error" in item["batch_result"]]
    assert len(failed) == state["num_error"]
    assert all(isinstance(item["batch_result"]["error"], str) for item in failed)

    config.error_rate = 1.0
    other = service.create_batch("c")["batch_id"]
    service.add_requests(other, [row("a")])
    assert counters(service, other)["num_error"] == 1


def test_cancel_stops_pending_work(config: EmulatorConfig, clock: ManualClock) -> None:
    config.processing_rate = 1.0
    service = BatchService(config, clock)
    batch_id = service.create_batch("b")["batch_id"]
    service.add_requests(batch_id, [row(f"r{n}") for n in range(5)])
    clock.advance(2.0)
    cancelled = service.cancel_batch(batch_id)
    assert cancelled["cancel_time"] == "2026-08-29"
    assert cancelled["cancel_by_xai_message"] is None
    expected = {"num_requests": 5, "num_pending": 0, "num_success": 2, "num_error": 0, "num_cancelled": 3}
    assert cancelled["state"] == expected
    clock.advance(100.0)
    assert service.cancel_batch(batch_id) == cancelled  # idempotent
    assert counters(service, batch_id) == expected

    results = all_results(service, batch_id)
    assert [item["batch_result"].get("error") for item in results] == [None, None] + ["Batch cancelled"] * 3
    states = [item["state"] for item in service.list_batch_requests(batch_id)["batch_request_metadata"]]
    assert states == ["succeeded", "succeeded", "cancelled", "cancelled", "cancelled"]


def test_request_metadata(config: EmulatorConfig, clock: ManualClock) -> None:
    config.processing_rate = 1.0
    service = BatchService(config, clock)
    batch_id = service.create_batch("b")["batch_id"]
    service.add_requests(
        batch_id,
        [
            row("c1"),
            {
                "batch_request_id": "i1",
                "batch_request": {"image_generation": {"model": "grok-imagine-image", "prompt": "cat"}},
            },
        ],
    )
    clock.advance(1.0)
    page = service.list_batch_requests(batch_id, 1)
    assert page["batch_request_metadata"] == [
        {
            "batch_request_id": "c1",
            "endpoint": "xai_api.Chat/GetCompletion",
            "model": "grok-4.3",
            "state": "succeeded",
            "create_time": "2026-08-29",
            "finish_time": "2026-08-29",
        }
    ]
    rest = service.list_batch_requests(batch_id, 1, page["pagination_token"])
    [meta] = rest["batch_request_metadata"]
    assert (meta["batch_request_id"], meta["state"], meta["finish_time"]) == ("i1", "pending", None)
    assert meta["endpoint"] == "xai_api.Image/GenerateImage"
    assert rest["pagination_token"] is None


def test_result_payloads_per_kind(service: BatchService) -> None:
    batch_id = service.create_batch("b")["batch_id"]
    long_prompt = "Summarise the following text in one line please: " + "x" * 100
    requests = [
        {"batch_request_id": "1-chat", "batch_request": chat(long_prompt)},
        {
            "batch_request_id": "2-resp",
            "batch_request": {
                "responses": {"model": "grok-4.3", "input": [{"role": "user", "content": "Hi"}]}
            },
        },
        {
            "batch_request_id": "3-img",
            "batch_request": {"image_generation": {"model": "grok-imagine-image", "prompt": "a cat", "n": 2}},
        },
        {
            "batch_request_id": "4-b64",
            "batch_request": {
                "image_edit": {
                    "model": "grok-imagine-image",
                    "prompt": "a hat",
                    "response_format": "b64_json",
                }
            },
        },
        {
            "batch_request_id": "5-vid",
            "batch_request": {"video_generation": {"model": "grok-imagine-video", "prompt": "waves"}},
        },
    ]
    service.add_requests(batch_id, requests)
    results = {
        item["batch_request_id"]: item["batch_result"]["response"] for item in all_results(service, batch_id)
    }

    completion = results["1-chat"]["chat_get_completion"]
    assert completion["object"] == "chat.completion" and completion["model"] == "grok-4.3"
    assert completion["choices"][0]["message"]["content"] == "Emulated answer to: " + long_prompt[:60]
    assert completion["choices"][0]["finish_reason"] == "stop"
    usage = completion["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert isinstance(usage["cost_in_usd_ticks"], int) and usage["cost_in_usd_ticks"] > 0
    assert (
        results["2-resp"]["chat_get_completion"]["choices"][0]["message"]["content"]
        == "Emulated answer to: Hi"
    )
    images = results["3-img"]["image_generation"]["data"]
    assert len(images) == 2 and all(image["url"].startswith("https://") for image in images)
    assert "b64_json" in results["4-b64"]["image_generation"]["data"][0]
    assert results["5-vid"]["video_generation"]["video"]["url"].endswith(".mp4")
    # Results are rendered on read, and identically each time.
    assert all_results(service, batch_id) == all_results(service, batch_id)


def test_list_batches_newest_first_with_pages(service: BatchService, clock: ManualClock) -> None:
    names = [f"b{n}" for n in range(5)]
    for name in names:
        service.create_batch(name)
        clock.advance(1)
    first = service.list_batches(2)
    second = service.list_batches(2, first["pagination_token"])
    third = service.list_batches(2, second["pagination_token"])
    listed = [batch["name"] for page in (first, second, third) for batch in page["batches"]]
    assert listed == names[::-1]
    assert third["pagination_token"] is None


def test_an_expired_batch_keeps_its_pending_requests(config: EmulatorConfig, clock: ManualClock) -> None:
    config.processing_rate = 1 / 86_400  # one request per day
    service = BatchService(config, clock)
    batch_id = service.create_batch("b")["batch_id"]
    service.add_requests(batch_id, [row(f"r{n}") for n in range(40)])
    clock.advance(45 * 86_400)
    state = counters(service, batch_id)
    assert (state["num_success"], state["num_pending"]) == (30, 10)


def test_a_large_batch_adds_and_pages_in_linear_time(service: BatchService) -> None:
    batch_id = service.create_batch("big")["batch_id"]
    total = 30_000
    for start in range(0, total, 3_000):
        service.add_requests(batch_id, [row(f"r{n:07d}", f"prompt {n}") for n in range(start, start + 3_000)])
    assert counters(service, batch_id)["num_success"] == total
    seen = 0
    token = None
    while True:
        page = service.list_results(batch_id, 1000, token)
        seen += len(page["results"])
        token = page["pagination_token"]
        if token is None:
            break
    assert seen == total  # how long it takes is in benchmarks/timings.py


def test_ids_and_texts_with_special_characters_survive_json(service: BatchService) -> None:
    batch_id = service.create_batch("b")["batch_id"]
    awkward = ['q"uote', "back\\slash", "new\nline", "ünïcødé-🙂"]
    service.add_requests(batch_id, [row(request_id, f"say {request_id}") for request_id in awkward])
    page = service.list_results(batch_id)
    assert [item["batch_request_id"] for item in page["results"]] == sorted(awkward)
    for item in page["results"]:
        content = item["batch_result"]["response"]["chat_get_completion"]["choices"][0]["message"]["content"]
        assert content == f"Emulated answer to: say {item['batch_request_id']}"
    assert json.loads(service.list_results_json(batch_id)) == page
