"""The operations as plans, run by hand without a network: every decision the clients share."""

from __future__ import annotations

import inspect
import io
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from airflow_provider_xai_batch.client import (
    AsyncXAIBatchClient,
    Batch,
    RetryPolicy,
    XAIBatchClient,
    XAIServerError,
    plans,
)
from airflow_provider_xai_batch.client.base import AmbiguousOutcomeError, ClientCore
from airflow_provider_xai_batch.client.plans import Emit, Pause, Stepper
from airflow_provider_xai_batch.client.protocol import ApiCall

Answer = Callable[[ApiCall], Any]


class Clock:
    """A monotonic clock that moves only when a plan pauses."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


CLOCK = Clock()


def run(plan: plans.Plan[Any], answer: Answer) -> tuple[Any, list[Any], list[ApiCall | Pause]]:
    """Run a plan, answering each call with ``answer`` (a response, or an exception to throw in).

    Pauses are not waited for: they move the clock of :func:`core` clients.
    """
    stepper = Stepper(plan)
    emitted: list[Any] = []
    steps: list[ApiCall | Pause] = []
    for step in stepper:
        if isinstance(step, Emit):
            emitted.extend(step.values)
            continue
        steps.append(step)
        if isinstance(step, Pause):
            CLOCK.now += step.seconds
        if isinstance(step, ApiCall):
            outcome = answer(step)
            if isinstance(outcome, Exception):
                stepper.error = outcome
            else:
                stepper.reply = outcome
    return stepper.result, emitted, steps


def core(**options: Any) -> ClientCore:
    policy = RetryPolicy(max_retries=3, jitter=lambda delay: delay)
    return ClientCore("key", retry_policy=policy, monotonic=CLOCK, **options)


def batch(batch_id: str, name: str, **fields: Any) -> dict[str, Any]:
    return {"batch_id": batch_id, "name": name, **fields}


def test_an_unclear_create_that_landed_is_found_by_name_not_created_again() -> None:
    unclear = AmbiguousOutcomeError(XAIServerError(503, None, "unavailable"))

    def answer(call: ApiCall) -> Any:
        if call.label == "POST /v1/batches":
            return unclear
        return httpx.Response(200, json={"batches": [batch("batch_9", "nightly")]})

    result, _, steps = run(plans.create_batch(core(), "nightly"), answer)
    assert result.batch_id == "batch_9"
    assert [s.label for s in steps if isinstance(s, ApiCall)] == ["POST /v1/batches", "GET /v1/batches"]


def test_an_unclear_create_is_looked_for_until_it_appears() -> None:
    unclear = AmbiguousOutcomeError(XAIServerError(503, None, "x"))
    listings = iter([[], [], [], [batch("b1", "n")]])

    def answer(call: ApiCall) -> Any:
        if call.method == "POST":
            return unclear
        return httpx.Response(200, json={"batches": next(listings)})

    result, _, steps = run(plans.create_batch(core(), "n"), answer)
    assert result.batch_id == "b1"
    assert [getattr(s, "seconds", s.label if isinstance(s, ApiCall) else None) for s in steps] == [
        "POST /v1/batches",
        "GET /v1/batches",
        0.5,
        "GET /v1/batches",
        1.0,
        "GET /v1/batches",
        2.0,
        "GET /v1/batches",
    ]


def test_an_unclear_create_that_did_not_land_is_retried_once_the_look_up_window_is_over() -> None:
    creates = iter(
        [AmbiguousOutcomeError(XAIServerError(503, None, "x")), httpx.Response(200, json=batch("b2", "n"))]
    )
    lookups: list[float] = []

    def answer(call: ApiCall) -> Any:
        if call.method == "POST":
            return next(creates)
        lookups.append(CLOCK.now)
        # A cancelled batch of that name is not one to reuse.
        return httpx.Response(200, json={"batches": [batch("b1", "n", cancel_time="2026-01-01T00:00:00Z")]})

    result, _, steps = run(plans.create_batch(core(create_lookup_seconds=12.0), "n"), answer)
    assert result.batch_id == "b2"
    assert [now - lookups[0] for now in lookups] == [0.0, 0.5, 1.5, 3.5, 7.5, 12.0]
    assert [s.label for s in steps if isinstance(s, ApiCall) and s.method == "POST"] == [
        "POST /v1/batches"
    ] * 2


def test_an_unclear_create_gives_up_with_the_services_error_after_the_retry_budget() -> None:
    def answer(call: ApiCall) -> Any:
        if call.method == "POST":
            return AmbiguousOutcomeError(XAIServerError(503, None, "still unavailable"))
        return httpx.Response(200, json={"batches": []})

    with pytest.raises(XAIServerError, match="still unavailable"):
        run(plans.create_batch(core(), "n"), answer)


def test_a_cancel_answer_without_a_batch_is_followed_by_reading_the_batch() -> None:
    def answer(call: ApiCall) -> Any:
        if call.method == "POST":
            return httpx.Response(200, json={})
        return httpx.Response(200, json=batch("b1", "n", cancel_time="2026-01-01T00:00:00Z"))

    result, _, steps = run(plans.cancel_batch(core(), "b1"), answer)
    assert result.status.value == "cancelled"
    assert [s.label for s in steps if isinstance(s, ApiCall)] == [
        "POST /v1/batches/b1:cancel",
        "GET /v1/batches/b1",
    ]


def test_listings_walk_every_page_until_the_token_runs_out() -> None:
    pages = {None: (["a", "b"], "t1"), "t1": (["c"], "")}

    def answer(call: ApiCall) -> Any:
        items, token = pages[(call.params or {}).get("pagination_token")]
        return httpx.Response(200, json={"batches": [batch(i, i) for i in items], "pagination_token": token})

    _, emitted, _ = run(plans.iter_batches(core(), 2), answer)
    assert [b.batch_id for b in emitted] == ["a", "b", "c"]


def test_an_upload_is_a_call_that_rewinds_a_seekable_file_before_each_attempt() -> None:
    file = io.BytesIO(b"xx{}\n")
    file.seek(2)
    sent: list[bytes] = []

    def answer(call: ApiCall) -> Any:
        for _ in range(2):  # a retried attempt reads the file again from where it started
            call.before_attempt()
            assert call.upload is not None
            sent.append(call.upload.file.read())
        return httpx.Response(200, json={"id": "file_1", "filename": "in.jsonl"})

    result, _, steps = run(plans.upload_file(core(), file, "in.jsonl", None), answer)
    assert result.id == "file_1" and sent == [b"{}\n", b"{}\n"]
    assert isinstance(steps[0], ApiCall) and steps[0].resend_safe


def test_reusable_means_not_cancelled_failed_or_expired() -> None:
    assert Batch(batch_id="b").is_reusable
    assert Batch.model_validate({"batch_id": "b", "state": {"num_requests": 1, "num_success": 1}}).is_reusable
    assert not Batch.model_validate({"batch_id": "b", "cancel_time": "2026-01-01T00:00:00Z"}).is_reusable
    assert not Batch.model_validate({"batch_id": "b", "cancel_by_xai_message": "bad line"}).is_reusable
    expired = {"batch_id": "b", "expire_time": "2020-01-01", "state": {"num_requests": 1, "num_pending": 1}}
    assert not Batch.model_validate(expired).is_reusable


def public_methods(cls: type) -> dict[str, Any]:
    return {
        name: member
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_both_clients_offer_the_same_methods() -> None:
    sync = public_methods(XAIBatchClient)
    asynchronous = public_methods(AsyncXAIBatchClient)
    assert set(sync) - {"close"} == set(asynchronous) - {"aclose"}
    client = AsyncXAIBatchClient("key")
    for name in set(asynchronous) - {"aclose"}:
        if name.startswith("iter_"):
            positional = [
                p
                for p in inspect.signature(sync[name]).parameters.values()
                if p.kind is p.POSITIONAL_OR_KEYWORD
            ]
            listing = getattr(client, name)(*["x"] * (len(positional) - 1))
            assert hasattr(listing, "__anext__"), name
            assert not inspect.iscoroutinefunction(asynchronous[name]), name
        else:
            assert inspect.iscoroutinefunction(asynchronous[name]), name
        same_parameters = inspect.signature(asynchronous[name]).parameters.keys()
        assert same_parameters == inspect.signature(sync[name]).parameters.keys(), name
