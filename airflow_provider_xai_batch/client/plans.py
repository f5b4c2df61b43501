"""What each public call does, written once as a plan of steps, with no I/O of its own.

A plan is a generator. It yields an :class:`~.protocol.ApiCall` to have it sent (the client sends
back the ``httpx.Response``, or throws the error into the plan), a :class:`Pause` to have the client
wait, and an :class:`Emit` to hand values to the caller of a listing. Its return value is the call's
result. The sync and async clients only run plans (:class:`Stepper` does the bookkeeping), so every
decision (falling back to a look-up after an unclear create, reading a cancel answer, walking pages)
lives here and is tested without a network, by feeding a plan answers by hand.

>>> import httpx
>>> stepper = Stepper(get_batch(ClientCore("key"), "batch_1"))
>>> for step in stepper:
...     print(step.label)
...     stepper.reply = httpx.Response(200, json={"batch_id": "batch_1", "name": "n"})
GET /v1/batches/batch_1
>>> stepper.result.batch_id
'batch_1'
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Generic, TypedDict, TypeVar

from airflow_provider_xai_batch.client import protocol, rejections
from airflow_provider_xai_batch.client.base import AmbiguousOutcomeError, ClientCore, PackedAdd, log, release
from airflow_provider_xai_batch.client.errors import XAIAPIError
from airflow_provider_xai_batch.client.models import Batch, BatchRequestMetadata, BatchResult, UploadedFile
from airflow_provider_xai_batch.client.policy import next_lookup_pause
from airflow_provider_xai_batch.client.prefetch import Prefetcher
from airflow_provider_xai_batch.client.protocol import ApiCall

T = TypeVar("T")


@dataclass(frozen=True)
class Pause:
    """Wait this many seconds before the plan goes on."""

    seconds: float


@dataclass(frozen=True)
class Emit:
    """Values for the caller of a listing, in order."""

    values: Iterable[Any]


Step = ApiCall | Pause | Emit
Plan = Generator[Step, Any, T]


class Stepper(Generic[T]):
    """Runs a plan one step at a time: iterate for the steps, set :attr:`reply` or :attr:`error`.

    Whatever the runner stores before asking for the next step is handed to the plan: the reply is
    sent into it, the error thrown into it. When the plan ends, :attr:`result` holds its value.
    """

    def __init__(self, plan: Plan[T]) -> None:
        self._plan = plan
        self.reply: Any = None
        self.error: Exception | None = None
        self.result: T | None = None

    def __iter__(self) -> Iterator[Step]:
        while True:
            reply, error = self.reply, self.error
            self.reply = self.error = None
            try:
                step = self._plan.send(reply) if error is None else self._plan.throw(error)
            except StopIteration as done:
                self.result = done.value
                return
            finally:
                del error  # the error's traceback refers to this frame
            yield step


# -- building blocks -------------------------------------------------------------------------
def _call(core: ClientCore, call: ApiCall) -> Plan[Any]:
    """Send one call and read its JSON answer."""
    response = yield call
    return core._json(response)


def _page(
    core: ClientCore, path: str, key: str, size: int, token: str | None, *alternatives: str
) -> Plan[Any]:
    payload = yield from _call(core, protocol.list_call(path, protocol.page_size(size), token))
    return protocol.parse_page(payload, key, *alternatives)


def _listing(
    core: ClientCore, path: str, key: str, size: int, convert: Callable[[Any], Any], *alternatives: str
) -> Plan[None]:
    token: str | None = None
    while True:
        items, token = yield from _page(core, path, key, size, token, *alternatives)
        yield Emit([convert(item) for item in items])
        if token is None:
            return


def _result_pages(
    core: ClientCore, batch_id: str, size: int, convert: Callable[[list[Any]], Iterable[Any]]
) -> Plan[None]:
    path = protocol.results_path(batch_id)
    token: str | None = None
    while True:
        response = yield protocol.list_call(path, protocol.page_size(size), token)
        items, token = protocol.parse_page(core._page_json(response), "results")
        release(response)
        yield Emit(convert(items))
        if token is None:
            return


# -- batches ---------------------------------------------------------------------------------
def create_batch(core: ClientCore, name: str, input_file_id: str | None = None) -> Plan[Batch]:
    call = protocol.create_batch_call(name, input_file_id)
    for attempt in range(core.retry_policy.max_retries + 1):
        try:
            return Batch.model_validate((yield from _call(core, call)))
        except AmbiguousOutcomeError as unclear:
            existing = yield from _look_for_created(core, name)
            if existing is not None:
                log.warning(
                    "creating batch %r had an unclear outcome; found it as %s", name, existing.batch_id
                )
                return existing
            delay = core.retry_policy.retry_delay(attempt)
            if delay is None:
                raise unclear.error from None
            yield Pause(delay)
    raise AssertionError("unreachable")


def _look_for_created(core: ClientCore, name: str) -> Plan[Batch | None]:
    """Look for the batch an unclear create may have made, for up to ``create_lookup_seconds``.

    The service may apply a create after the client gave up waiting for its answer: one look right
    away would miss it, and creating again would leave a second, empty batch.
    """
    deadline = core._monotonic() + core.create_lookup_seconds
    lookups = 0
    while True:
        found = yield from find_batch_by_name(core, name)
        if found is not None:
            return found
        pause = next_lookup_pause(lookups, deadline - core._monotonic())
        if pause is None:
            log.warning(
                "no batch %r appeared within %.0fs; creating it again", name, core.create_lookup_seconds
            )
            return None
        yield Pause(pause)
        lookups += 1


def get_batch(core: ClientCore, batch_id: str) -> Plan[Batch]:
    return Batch.model_validate((yield from _call(core, protocol.get_batch_call(batch_id))))


def iter_batches(core: ClientCore, page_size: int) -> Plan[None]:
    return _listing(core, protocol.batches_path(), "batches", page_size, Batch.model_validate, "data")


def find_batch_by_name(core: ClientCore, name: str) -> Plan[Batch | None]:
    token: str | None = None
    while True:
        items, token = yield from _page(core, protocol.batches_path(), "batches", 100, token, "data")
        for item in items:
            batch = Batch.model_validate(item)
            if batch.name == name and batch.is_reusable:
                return batch
        if token is None:
            return None


def cancel_batch(core: ClientCore, batch_id: str) -> Plan[Batch]:
    payload = yield from _call(core, protocol.cancel_batch_call(batch_id))
    if isinstance(payload, dict) and "batch_id" in payload:
        return Batch.model_validate(payload)
    # Some answers to a cancel carry no batch: read it back.
    return (yield from get_batch(core, batch_id))


class AddRequestsOptions(TypedDict, total=False):
    """The keywords of ``add_requests``, the same on both clients and the hook.

    ``source`` names the input in errors (default ``"requests"``); ``on_call`` is told the number
    of requests of each add call once the service accepted it.

    >>> options: AddRequestsOptions = {"source": "s3://prompts/day.jsonl"}
    """

    source: str
    on_call: Callable[[int], object] | None


def add_requests(
    core: ClientCore,
    batch_id: str,
    requests: Iterable[Any],
    source: str = "requests",
    on_call: Callable[[int], object] | None = None,
) -> Plan[int]:
    added = 0
    if core.prefetch_add_calls:
        # The packer sizes each call by how long the one before it is on its way (see pack_add_calls).
        sender_waiting = threading.Event()
        packed = core._packed_adds(requests, source, sender_idle=sender_waiting.is_set)
        adds_in_order: contextlib.AbstractContextManager[Iterable[PackedAdd]] = Prefetcher(
            packed, consumer_waiting=sender_waiting
        )
    else:
        adds_in_order = contextlib.nullcontext(core._packed_adds(requests, source))
    with adds_in_order as adds:
        for add in adds:
            yield from _send_add(core, batch_id, add, source, on_call)
            added += add.new
    return added


def _send_add(
    core: ClientCore,
    batch_id: str,
    add: PackedAdd,
    source: str,
    on_call: Callable[[int], object] | None,
) -> Plan[None]:
    """Send one add call; if the service rejects it as a whole, split it down to the request at fault."""
    pending = [(add.call, 0)]
    while pending:
        call, first = pending.pop()
        api_call = protocol.add_requests_call(batch_id, call)
        try:
            yield api_call
        except XAIAPIError as error:
            if not rejections.should_split(error, count=call.count):
                if call.count == 1:
                    raise rejections.located_error(error, call, add.where, first, source) from None
                raise
            log.info(
                "an add call of %d requests was rejected (%s); splitting it to find the request at fault",
                call.count,
                error.message[:200],
            )
            pending += rejections.halves(call, first)
        else:
            if on_call is not None:
                on_call(call.count)
        finally:
            api_call.discard_body()


def iter_batch_requests(core: ClientCore, batch_id: str, page_size: int) -> Plan[None]:
    path = protocol.batch_requests_path(batch_id)
    return _listing(core, path, "batch_request_metadata", page_size, BatchRequestMetadata.model_validate)


# -- results ---------------------------------------------------------------------------------
def iter_results(core: ClientCore, batch_id: str, page_size: int) -> Plan[None]:
    return _result_pages(core, batch_id, page_size, lambda items: map(BatchResult.model_validate, items))


def iter_result_pages(core: ClientCore, batch_id: str, page_size: int) -> Plan[None]:
    return _result_pages(
        core, batch_id, page_size, lambda items: ([BatchResult.model_validate(item) for item in items],)
    )


def iter_raw_result_pages(core: ClientCore, batch_id: str, page_size: int) -> Plan[None]:
    return _result_pages(core, batch_id, page_size, lambda items: (items,))


def iter_result_page_bodies(core: ClientCore, batch_id: str, page_size: int) -> Plan[None]:
    path = protocol.results_path(batch_id)
    token: str | None = None
    while True:
        response = yield protocol.list_call(path, protocol.page_size(page_size), token)
        token = core._page_token(response)
        yield Emit((release(response),))
        if token is None:
            return


# -- files -----------------------------------------------------------------------------------
def upload_file(
    core: ClientCore,
    file: str | os.PathLike[str] | IO[bytes],
    filename: str | None,
    expires_after: int | None,
) -> Plan[UploadedFile]:
    """Upload a local path (opened here, for both clients) or an open binary file object."""
    if isinstance(file, (str, os.PathLike)):
        # Opening a local file does not wait on the network; its reads go out in small pieces.
        with open(file, "rb") as handle:
            name = filename or os.path.basename(os.fspath(file))
            return (yield from _upload(core, handle, name, expires_after))
    return (yield from _upload(core, file, filename, expires_after))


def _upload(
    core: ClientCore, file: IO[bytes], filename: str | None, expires_after: int | None
) -> Plan[UploadedFile]:
    call = protocol.upload_file_call(file, filename, expires_after)
    try:
        return UploadedFile.model_validate((yield from _call(core, call)))
    except AmbiguousOutcomeError as unclear:
        # A file that cannot be rewound cannot be sent again; whether it arrived is unknown.
        raise unclear.error from None


def get_file(core: ClientCore, file_id: str) -> Plan[UploadedFile]:
    return UploadedFile.model_validate((yield from _call(core, ApiCall("GET", protocol.file_path(file_id)))))


def delete_file(core: ClientCore, file_id: str) -> Plan[None]:
    yield ApiCall("DELETE", protocol.file_path(file_id))


def iter_files(core: ClientCore, page_size: int) -> Plan[None]:
    return _listing(core, "/v1/files", "data", page_size, UploadedFile.model_validate, "files")
