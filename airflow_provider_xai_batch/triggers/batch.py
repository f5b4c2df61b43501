"""Wait for an xAI batch in the triggerer: :class:`XAIBatchTrigger`.

The trigger polls one batch with the asynchronous client until the batch is terminal, the
wall-clock ``end_time`` passes, or polling fails for good; then it yields exactly one event, in
the format of :mod:`airflow_provider_xai_batch.waiting.events`. What each poll result means is
decided by :class:`~airflow_provider_xai_batch.waiting.poller.BatchPoller`, shared with the
synchronous waits. Results are never downloaded here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_xai_batch.client import AsyncXAIBatchClient, Batch
from airflow_provider_xai_batch.hooks.xai import XAIBatchHook
from airflow_provider_xai_batch.triggers.client_pool import SHARED_CLIENTS, SharedClient
from airflow_provider_xai_batch.triggers.shared_polls import SHARED_POLLS
from airflow_provider_xai_batch.waiting import (
    DEFAULT_OUTAGE_TOLERANCE,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_PROGRESS_INTERVAL,
    BatchPoller,
    check_error_budget,
)

# Each poll may retry a blip quickly inside the client; longer trouble is the trigger's to pace.
CLIENT_RETRIES_PER_POLL = 2
# Airflow 3.3 bounds on_kill (``[triggerer] on_kill_timeout``, 30 s by default); stay inside it.
CANCEL_TIMEOUT_SECONDS = 25.0


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
        ``None`` (the default): only ``outage_tolerance`` counts (before it, 10 failed polls did,
        :data:`~airflow_provider_xai_batch.waiting.DEFAULT_MAX_TRANSIENT_ERRORS`).
    :param outage_tolerance: Seconds the service may stay unreachable (429, 5xx, network) before
        an ``error`` event saying the batch may still be running at xAI and that clearing the task
        resumes the wait (default 900); ``None``: only ``max_transient_errors`` counts.
    :param progress_interval: Log progress (done/total, percent, rate, time left) whenever the
        counts change, at most once per this many seconds.

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
        max_transient_errors: int | None = None,
        progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
        outage_tolerance: float | None = DEFAULT_OUTAGE_TOLERANCE,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        check_error_budget(max_transient_errors, outage_tolerance)
        self.batch_id = batch_id
        self.xai_conn_id = xai_conn_id
        self.poll_interval = float(poll_interval)
        self.end_time = float(end_time) if end_time is not None else None
        self.cancel_on_kill = bool(cancel_on_kill)
        self.max_transient_errors = None if max_transient_errors is None else int(max_transient_errors)
        self.progress_interval = float(progress_interval)
        self.outage_tolerance = None if outage_tolerance is None else float(outage_tolerance)

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
                "progress_interval": self.progress_interval,
                "outage_tolerance": self.outage_tolerance,
            },
        )

    async def _client(self, **overrides: Any) -> AsyncXAIBatchClient:
        return await XAIBatchHook(xai_conn_id=self.xai_conn_id).get_async_conn(**overrides)

    async def _polling_client(self) -> AsyncXAIBatchClient:
        # Shared by every wait of the connection on this loop: as many connections as calls in flight.
        client = await self._client(max_connections=SHARED_CLIENTS.calls_per_client)
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
        poller = BatchPoller(
            self.batch_id,
            poll_interval=self.poll_interval,
            end_time=self.end_time,
            max_transient_errors=self.max_transient_errors,
            outage_tolerance=self.outage_tolerance,
            progress_interval=self.progress_interval,
        )
        try:
            lease = [await SHARED_CLIENTS.acquire(self.xai_conn_id, self._polling_client)]
        except Exception as exc:  # a missing connection or key must end the wait, not crash the triggerer
            return poller.error_event(f"cannot use connection {self.xai_conn_id!r}: {exc}")
        try:
            return await self._poll(poller, lease)
        finally:
            await SHARED_CLIENTS.release(self.xai_conn_id, lease[0])

    async def _poll(self, poller: BatchPoller, lease: list[SharedClient]) -> dict[str, Any]:
        last_answer = -float("inf")
        while True:
            try:
                # Waits on the same batch in this triggerer share one call per poll interval, but a
                # wait never takes back an answer it already had (as at a deadline that cut a sleep).
                fresh_for = min(self.poll_interval / 2, time.monotonic() - last_answer)
                answer: Batch | Exception = await SHARED_POLLS.get_batch(
                    lease[0], self.xai_conn_id, self.batch_id, fresh_for=fresh_for
                )
                last_answer = time.monotonic()
            except Exception as exc:
                answer = exc
            step = poller.step(answer, now=time.time(), log=self.log)
            if step.event is not None:
                return step.event
            if step.renew:
                try:
                    fresh = await SHARED_CLIENTS.acquire(
                        self.xai_conn_id, self._polling_client, replacing=lease[0]
                    )
                except Exception as lookup_error:
                    return poller.error_event(f"polling batch {self.batch_id}: {lookup_error}")
                await SHARED_CLIENTS.release(self.xai_conn_id, lease[0])
                lease[0] = fresh
                continue
            await asyncio.sleep(step.delay)

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
