"""Test your own DAGs against the emulator: helpers, and a pytest plugin of fixtures.

Installing the provider registers the pytest plugin (:mod:`.pytest_plugin`): a test asks for
``xai_emulator`` (a running emulator on a loopback port) and ``xai_default_conn`` (the
``xai_default`` connection pointing at it) and runs its DAG with ``dag.test()``. Nothing here
imports Airflow, so the plugin does not change how Airflow starts in a test run.

:class:`XAIEmulator` is what ``xai_emulator`` gives: the server, its clock, fault injection, and
what it received::

    def test_nightly(xai_emulator, xai_default_conn):
        xai_emulator.faults.inject("add_requests", status=503)   # one refused add call
        assert nightly.test().state == "success"
        [batch] = xai_emulator.batches()
        assert batch["state"]["num_requests"] == 3
        assert xai_emulator.calls("add_requests") == 2          # the refused one was sent again
"""

from __future__ import annotations

from typing import Any

from airflow_provider_xai_batch.emulator import EmulatorServer, FaultPlan, LoggedRequest, ManualClock
from airflow_provider_xai_batch.emulator.config import connection_json

__all__ = ["XAIEmulator"]


class XAIEmulator:
    """A running emulator and what it saw; wraps :class:`~airflow_provider_xai_batch.emulator.EmulatorServer`.

    >>> with XAIEmulator.start(api_key="k") as emulator:
    ...     emulator.batches()
    []
    """

    def __init__(self, server: EmulatorServer, clock: ManualClock | None = None) -> None:
        self.server = server
        self.clock = clock

    @classmethod
    def start(
        cls, *, api_key: str = "xai-test-key", clock: ManualClock | None = None, **settings: Any
    ) -> XAIEmulator:
        """Start an emulator (``settings``: any ``EmulatorConfig`` field, e.g. ``processing_rate=5``)."""
        return cls(EmulatorServer(api_key=api_key, clock=clock, **settings).start(), clock)

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> XAIEmulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- where it is -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:<port>``."""
        return self.server.url

    @property
    def api_key(self) -> str:
        return str(self.server.config.api_key)

    def connection_json(self, *, api_key: str | None = None, **extra: Any) -> str:
        """An ``xai`` connection to this emulator as JSON, for an ``AIRFLOW_CONN_<ID>`` variable."""
        return connection_json(self.url, self.api_key if api_key is None else api_key, extra)

    # -- steering ----------------------------------------------------------------------------------
    @property
    def faults(self) -> FaultPlan:
        """Fault injection: ``faults.inject("add_requests", status=503, count=2)``, ``drop=``, ``latency_ms=``."""
        return self.server.faults

    def configure(self, **settings: Any) -> None:
        """Change settings while running, e.g. ``configure(processing_rate=0)`` to hold batches."""
        self.server.config.update(settings)

    def advance(self, seconds: float) -> None:
        """Move the manual clock (``xai_emulator_clock``) forward: processing follows it."""
        if self.clock is None:
            raise RuntimeError("this emulator runs on the wall clock: ask for the xai_emulator_clock fixture")
        self.clock.advance(seconds)

    # -- what it received --------------------------------------------------------------------------
    def batches(self) -> list[dict[str, Any]]:
        """Every batch, newest first, as the service would describe it (``name``, ``state`` ...)."""
        found: list[dict[str, Any]] = []
        token = None
        while True:
            page = self.server.service.list_batches(limit=1000, token=token)
            found.extend(page["batches"])
            token = page.get("pagination_token")
            if not token:
                return found

    def batch_named(self, prefix: str) -> dict[str, Any]:
        """The one batch whose name starts with ``prefix`` (operators append a suffix to names)."""
        matches = [batch for batch in self.batches() if str(batch.get("name") or "").startswith(prefix)]
        if len(matches) != 1:
            raise AssertionError(
                f"{len(matches)} batches named {prefix!r}...: {[b.get('name') for b in matches]}"
            )
        return matches[0]

    def requests(self, batch_id: str) -> list[dict[str, Any]]:
        """Per-request metadata of a batch in submission order (``batch_request_id``, ``model``, ``state``)."""
        rows: list[dict[str, Any]] = []
        token = None
        while True:
            page = self.server.service.list_batch_requests(batch_id, limit=1000, token=token)
            rows.extend(page["batch_request_metadata"])
            token = page.get("pagination_token")
            if not token:
                return rows

    def request_ids(self, batch_id: str) -> list[str]:
        """The request ids a batch holds, in submission order."""
        return [str(row["batch_request_id"]) for row in self.requests(batch_id)]

    def received(self, route: str | None = None) -> list[LoggedRequest]:
        """The HTTP requests received (method, target, headers, start of the body), oldest first.

        ``route`` narrows them to one route name, e.g. ``"create_batch"`` or ``"add_requests"``.
        """
        return [entry for entry in self.server.request_log if route is None or entry.route == route]

    def calls(self, route: str | None = None) -> int:
        """How many calls a route (or every route) received, refused ones included."""
        return self.server.calls(route)
