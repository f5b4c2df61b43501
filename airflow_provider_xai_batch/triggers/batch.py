"""Wait for an xAI batch in the triggerer: :class:`XAIBatchTrigger`.

The trigger polls one batch with the asynchronous client until the batch is terminal, the
wall-clock ``end_time`` passes, or polling fails for good; then it yields exactly one event::

    {"status": "success" | "error" | "timeout",
     "batch_id": "batch_...",
     "batch_status": "completed" | "failed" | ... | None,   # None when the batch was never read
     "batch": {...} | None,                                # Batch.to_xcom() of the last poll
     "message": "human-readable summary"}

``success`` means the batch reached a terminal status (completed, failed, cancelled or expired);
whoever resumes decides what each one means. ``error`` means polling could not go on (unknown
batch, bad key, too many transient errors in a row). Results are never downloaded here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_xai_batch.client import (
    AsyncXAIBatchClient,
    Batch,
    XAIAuthenticationError,
    XAIConnectionError,
    XAIError,
    XAIRateLimitError,
    XAIServerError,
)
from airflow_provider_xai_batch.hooks.xai import XAIBatchHook
from airflow_provider_xai_batch.triggers.shared_polls import SHARED_POLLS

DEFAULT_POLL_INTERVAL = 60.0
DEFAULT_MAX_TRANSIENT_ERRORS = 10
# Backoff after transient errors never exceeds this (unless the poll interval itself is longer).
MAX_BACKOFF_SECONDS = 600.0
# Each poll may retry a blip quickly inside the client; longer trouble is the trigger's to pace.
CLIENT_RETRIES_PER_POLL = 2
# Airflow 3.3 bounds on_kill (``[triggerer] on_kill_timeout``, 30 s by default); stay inside it.
CANCEL_TIMEOUT_SECONDS = 25.0
# New waits get a client built at most this long ago, so connection edits reach them.
SHARED_CLIENT_MAX_AGE_SECONDS = 300.0
# Waits per shared client: few enough that httpcore's per-call pool bookkeeping stays cheap.
WAITS_PER_CLIENT = 8
# Each sleep is the poll interval give or take this fraction.
POLL_JITTER = 0.1
# Progress lines between status changes, at most this often per trigger.
PROGRESS_LOG_SECONDS = 300.0

EVENT_STATUSES = frozenset({"success", "error", "timeout"})
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (XAIRateLimitError, XAIServerError, XAIConnectionError)


def transient_backoff(
    poll_interval: float,
    failures: int,
    *,
    cap: float = MAX_BACKOFF_SECONDS,
    jitter: Callable[[float], float] = lambda delay: delay * random.uniform(1.0, 1.1),
) -> float:
    """Seconds to wait after the ``failures``-th transient error in a row: capped exponential.

    Starts at the poll interval (never polls faster than the user asked), doubles per failure,
    and stops growing at ``cap`` (or at the poll interval when that is longer).

    >>> [transient_backoff(60, n, jitter=lambda d: d) for n in (1, 2, 3, 4, 5, 6)]
    [60.0, 120.0, 240.0, 480.0, 600.0, 600.0]
    """
    ceiling = max(cap, poll_interval)
    raw = min(ceiling, poll_interval * 2.0 ** max(0, failures - 1))
    return float(min(ceiling, max(0.0, jitter(raw))))


def batch_event(status: str, batch_id: str, batch: Batch | None, message: str) -> dict[str, Any]:
    """The one event payload the trigger yields (JSON-safe).

    >>> batch_event("error", "batch_1", None, "not found")["batch_status"] is None
    True
    """
    if status not in EVENT_STATUSES:
        raise ValueError(f"unknown event status {status!r}")
    return {
        "status": status,
        "batch_id": batch_id,
        "batch_status": batch.status.value if batch is not None else None,
        "batch": batch.to_xcom() if batch is not None else None,
        "message": message,
    }


def describe_batch(batch: Batch) -> str:
    """A one-line summary of a batch, with xAI's own message when it rejected the batch.

    >>> describe_batch(Batch(batch_id="b", cancel_by_xai_message="line 2: invalid JSON"))
    'Batch b failed: line 2: invalid JSON'
    """
    state = batch.state
    if batch.cancel_by_xai_message:
        return f"Batch {batch.batch_id} failed: {batch.cancel_by_xai_message}"
    return (
        f"Batch {batch.batch_id} is {batch.status.value}: {state.num_success} succeeded, "
        f"{state.num_error} failed, {state.num_cancelled} cancelled, {state.num_pending} pending "
        f"of {state.num_requests}"
    )


@dataclasses.dataclass(eq=False)
class SharedClient:
    """One client and how many waits are using it."""

    client: AsyncXAIBatchClient
    created: float
    users: int = 0


class SharedClients:
    """Polling clients shared by the waits on one event loop that use the same connection.

    Building a client costs tens of milliseconds of CPU (httpx loads the TLS trust store), which
    hundreds of triggers starting together would each pay on the triggerer's loop. Sharing pays it
    once per ``waits_per_client`` waits; keeping that number small keeps each connection pool
    small, because httpcore's pool bookkeeping grows with its connections times its queued calls.
    The last user of a client closes it.

    >>> async def poll_once(factory):  # doctest: +SKIP
    ...     shared = await SHARED_CLIENTS.acquire("xai_default", factory)
    ...     try:
    ...         return await shared.client.get_batch("batch_1")
    ...     finally:
    ...         await SHARED_CLIENTS.release("xai_default", shared)
    """

    def __init__(
        self, waits_per_client: int = WAITS_PER_CLIENT, max_age: float = SHARED_CLIENT_MAX_AGE_SECONDS
    ) -> None:
        self.waits_per_client = waits_per_client
        self.max_age = max_age
        self._live: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, list[SharedClient]]] = (
            weakref.WeakKeyDictionary()
        )
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
            weakref.WeakKeyDictionary()
        )

    async def acquire(
        self,
        key: str,
        factory: Callable[[], Awaitable[AsyncXAIBatchClient]],
        *,
        replacing: SharedClient | None = None,
    ) -> SharedClient:
        """A live client for ``key`` with room for one more wait, built by ``factory`` if needed.

        ``replacing`` (a client that just failed to authenticate) is retired with every other live
        client of ``key``, so the connection is read again; if another wait already did that, the
        fresh client is reused.
        """
        loop = asyncio.get_running_loop()
        live = self._live.setdefault(loop, {}).setdefault(key, [])
        lock = self._locks.setdefault(loop, {}).setdefault(key, asyncio.Lock())
        async with lock:
            # Retired clients leave the list; their last user closes them. A client that failed to
            # authenticate retires its siblings too: they were all built from the same connection.
            if any(item is replacing for item in live):
                live.clear()
            now = time.monotonic()
            live[:] = [item for item in live if now - item.created <= self.max_age]
            shared = next((item for item in live if item.users < self.waits_per_client), None)
            if shared is None:
                shared = SharedClient(await factory(), time.monotonic())
                live.append(shared)
            shared.users += 1
            return shared

    async def release(self, key: str, shared: SharedClient) -> None:
        """Stop using ``shared``; the last user closes it."""
        shared.users -= 1
        if shared.users > 0:
            return
        live = self._live.get(asyncio.get_running_loop(), {}).get(key, [])
        if shared in live:
            live.remove(shared)
        await shared.client.aclose()


SHARED_CLIENTS = SharedClients()


class XAIBatchTrigger(BaseTrigger):
    """Poll an xAI batch until it is terminal, then yield one event.

    Fully asynchronous (the connection is resolved and every call made without blocking the
    triggerer's event loop) and safe across triggerer restarts: it serialises only ids, numbers
    and flags, and its deadline ``end_time`` is wall-clock epoch seconds.

    :param batch_id: The batch to wait for.
    :param xai_conn_id: The ``xai`` connection to poll through.
    :param poll_interval: Seconds between polls.
    :param end_time: Epoch seconds (``time.time()``) after which a ``timeout`` event is yielded;
        ``None`` waits as long as it takes.
    :param cancel_on_kill: Cancel the batch when a user kills the deferred task (Airflow 3.3+,
        which calls ``on_kill``; older versions have no such hook and leave the batch running).
    :param max_transient_errors: Consecutive failed polls (429, 5xx, network) tolerated, with
        capped exponential backoff, before an ``error`` event; other errors end the wait at once.

    >>> trigger = XAIBatchTrigger("batch_123", poll_interval=30, end_time=time.time() + 3600)
    >>> trigger.serialize()[0]
    'airflow_provider_xai_batch.triggers.batch.XAIBatchTrigger'
    """

    def __init__(
        self,
        batch_id: str,
        xai_conn_id: str = XAIBatchHook.default_conn_name,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        end_time: float | None = None,
        cancel_on_kill: bool = False,
        max_transient_errors: int = DEFAULT_MAX_TRANSIENT_ERRORS,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        if max_transient_errors < 0:
            raise ValueError("max_transient_errors must not be negative")
        self.batch_id = batch_id
        self.xai_conn_id = xai_conn_id
        self.poll_interval = float(poll_interval)
        self.end_time = float(end_time) if end_time is not None else None
        self.cancel_on_kill = bool(cancel_on_kill)
        self.max_transient_errors = int(max_transient_errors)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and keyword arguments: ids, numbers and flags only, never a credential."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "batch_id": self.batch_id,
                "xai_conn_id": self.xai_conn_id,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "cancel_on_kill": self.cancel_on_kill,
                "max_transient_errors": self.max_transient_errors,
            },
        )

    async def _client(self) -> AsyncXAIBatchClient:
        return await XAIBatchHook(xai_conn_id=self.xai_conn_id).get_async_conn()

    async def _polling_client(self) -> AsyncXAIBatchClient:
        client = await self._client()
        policy = client.retry_policy
        client.retry_policy = dataclasses.replace(
            policy, max_retries=min(policy.max_retries, CLIENT_RETRIES_PER_POLL)
        )
        return client

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the batch is terminal, the deadline passes or polling fails; yield one event."""
        yield TriggerEvent(await self.wait())  # type: ignore[no-untyped-call]

    async def wait(self) -> dict[str, Any]:
        """The whole wait as one coroutine, returning the event payload (handy outside a triggerer)."""
        try:
            lease = [await SHARED_CLIENTS.acquire(self.xai_conn_id, self._polling_client)]
        except Exception as exc:  # a missing connection or key must end the wait, not crash the triggerer
            return batch_event(
                "error", self.batch_id, None, f"cannot use connection {self.xai_conn_id!r}: {exc}"
            )
        try:
            return await self._poll(lease)
        finally:
            await SHARED_CLIENTS.release(self.xai_conn_id, lease[0])

    def _remaining(self) -> float | None:
        return None if self.end_time is None else self.end_time - time.time()

    async def _poll(self, lease: list[SharedClient]) -> dict[str, Any]:
        failures = 0
        last: Batch | None = None
        last_error: Exception | None = None
        seen_status: str | None = None
        next_progress_log = 0.0
        renewed = False
        while True:
            try:
                # Waits on the same batch in this triggerer share one call per poll interval.
                batch = await SHARED_POLLS.get_batch(
                    lease[0].client, self.xai_conn_id, self.batch_id, fresh_for=self.poll_interval / 2
                )
            except TRANSIENT_ERRORS as exc:
                failures += 1
                last_error = exc
                if failures > self.max_transient_errors:
                    return batch_event(
                        "error",
                        self.batch_id,
                        last,
                        f"polling batch {self.batch_id} failed {failures} times in a row: {exc}",
                    )
                delay = transient_backoff(self.poll_interval, failures)
                self.log.warning(
                    "Polling batch %s failed (%s); attempt %d of %d, next in %.1fs",
                    self.batch_id,
                    exc,
                    failures,
                    self.max_transient_errors + 1,
                    delay,
                )
            except XAIAuthenticationError as exc:
                if renewed:
                    return batch_event("error", self.batch_id, last, f"polling batch {self.batch_id}: {exc}")
                # The key may have been rotated during a long wait: read the connection once more.
                renewed = True
                try:
                    fresh = await SHARED_CLIENTS.acquire(
                        self.xai_conn_id, self._polling_client, replacing=lease[0]
                    )
                except Exception as lookup_error:
                    return batch_event(
                        "error", self.batch_id, last, f"polling batch {self.batch_id}: {lookup_error}"
                    )
                await SHARED_CLIENTS.release(self.xai_conn_id, lease[0])
                lease[0] = fresh
                continue
            except XAIError as exc:
                return batch_event("error", self.batch_id, last, f"polling batch {self.batch_id}: {exc}")
            except Exception as exc:  # an unreadable answer is as final as a 4xx; report it, do not crash
                return batch_event(
                    "error",
                    self.batch_id,
                    last,
                    f"polling batch {self.batch_id}: {type(exc).__name__}: {exc}",
                )
            else:
                failures, last, last_error = 0, batch, None
                status = batch.status
                if status.is_terminal:
                    return batch_event("success", self.batch_id, batch, describe_batch(batch))
                # A line per status change, and progress at most every few minutes: hundreds of
                # triggers share the triggerer's log.
                if status.value != seen_status or time.monotonic() >= next_progress_log:
                    seen_status = status.value
                    next_progress_log = time.monotonic() + PROGRESS_LOG_SECONDS
                    self.log.info("%s", describe_batch(batch))
                # Spread polls a little: triggers restarted together would otherwise poll in lockstep.
                delay = self.poll_interval * random.uniform(1.0 - POLL_JITTER, 1.0 + POLL_JITTER)
            remaining = self._remaining()
            if remaining is not None and remaining <= 0:
                cause = f" (last poll: {last_error})" if last_error is not None else ""
                status_text = last.status.value if last is not None else "unknown"
                return batch_event(
                    "timeout",
                    self.batch_id,
                    last,
                    f"Batch {self.batch_id} was still {status_text} when the wait timed out{cause}",
                )
            # Never sleep past the deadline: the last poll happens right at end_time.
            await asyncio.sleep(delay if remaining is None else min(delay, remaining))

    async def on_kill(self) -> None:
        """Cancel the batch when a user kills the deferred task and ``cancel_on_kill`` is set.

        Airflow 3.3+ calls this only on a user action (mark failed/success, clear), never on a
        triggerer restart or a timeout. Older Airflow never calls it; ``cleanup`` is deliberately
        left alone because it also runs on every restart, where cancelling would be wrong.
        """
        if not self.cancel_on_kill:
            return
        try:
            await asyncio.wait_for(self._cancel(), CANCEL_TIMEOUT_SECONDS)
        except Exception as exc:  # a failed cancel must not disturb the triggerer
            self.log.warning("Could not cancel batch %s on kill: %s", self.batch_id, exc)

    async def _cancel(self) -> None:
        client = await self._client()
        try:
            batch = await client.get_batch(self.batch_id)
            # Cancelling a finished batch would only relabel it cancelled; leave it be.
            if batch.is_terminal:
                self.log.info("Batch %s is already %s; not cancelling", self.batch_id, batch.status.value)
                return
            batch = await client.cancel_batch(self.batch_id)
            self.log.info("Cancelled batch %s on kill (%s)", self.batch_id, batch.status.value)
        finally:
            await client.aclose()
