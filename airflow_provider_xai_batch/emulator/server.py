"""Run the emulator in a background thread of the current process: the form tests and demos use."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from airflow_provider_xai_batch.emulator.clock import Clock, SystemClock
from airflow_provider_xai_batch.emulator.config import EmulatorConfig
from airflow_provider_xai_batch.emulator.faults import FaultPlan
from airflow_provider_xai_batch.emulator.http import EmulatorApp, HTTPServer
from airflow_provider_xai_batch.emulator.request_log import RequestLog
from airflow_provider_xai_batch.emulator.state import BatchService


class EmulatorServer:
    """A running emulator on a loopback port, in its own thread with its own event loop.

    Every ``EmulatorConfig`` field can be given as a keyword (``processing_rate=5``, ...).

    >>> import httpx
    >>> with EmulatorServer(api_key="k", create_rate_limit=0) as emu:
    ...     auth = {"Authorization": "Bearer k"}
    ...     answer = httpx.post(f"{emu.url}/v1/batches", json={"name": "n"}, headers=auth)
    ...     answer.status_code, emu.faults.calls("create_batch")
    (200, 1)
    """

    def __init__(
        self,
        api_key: str = "k",
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        *,
        config: EmulatorConfig | None = None,
        **knobs: Any,
    ) -> None:
        unknown = set(knobs) - set(EmulatorConfig.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown emulator settings: {', '.join(sorted(unknown))}")
        if config is None:
            config = EmulatorConfig(api_key=api_key)
        else:
            config.update({"api_key": api_key})
        config.update(knobs)
        self.config = config
        self.host = host
        self.port = port
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.service = BatchService(config, self.clock)
        self.faults = FaultPlan(config)
        self.request_log = RequestLog(config.request_log_size)
        self._http = HTTPServer(EmulatorApp(self.service, self.faults, self.request_log), host, port)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._own_media_url = False

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (the real port once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def stats(self) -> dict[str, Any]:
        """Calls per route, answers per status, drops, 429 count, what the service holds."""
        stats = self.faults.stats()
        stats["service"] = self.service.counts()
        return stats

    def calls(self, route: str | None = None) -> int:
        """Calls received for ``route`` (e.g. ``"add_requests"``), or for all routes."""
        return self.faults.calls(route)

    def answers(self, status: int, route: str | None = None) -> int:
        """Answers sent with ``status`` (e.g. 429), for one route or all."""
        return self.faults.answers(status, route)

    def start(self) -> EmulatorServer:
        """Bind and serve; returns once the port is open."""
        if self._thread is not None:
            raise RuntimeError("the emulator is already running")
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._http.start())
            except BaseException as error:
                failure.append(error)
                started.set()
                loop.close()
                return
            self.port = self._http.port
            if not self.config.media_base_url:
                # Results name media at the address the emulator serves it from.
                self.config.update({"media_base_url": self.url})
                self._own_media_url = True
            started.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_default_executor())
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="xai-batch-emulator", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            self._thread.join()
            self._thread = self._loop = None
            raise failure[0]
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listening socket and every open connection, then end the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._http.close(), loop).result(timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            self._loop = self._thread = None
            if self._own_media_url:  # a config shared with a later server must not name this one
                self.config.update({"media_base_url": ""})
                self._own_media_url = False

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
