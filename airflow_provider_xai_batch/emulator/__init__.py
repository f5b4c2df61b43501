"""A local stand-in for xAI's Batch API, faithful to the wire contract, for tests, demos and CI.

State (``BatchService``, pure and clock-driven) is kept apart from HTTP (an ``h11`` server in its
own thread) and from fault injection (``FaultPlan``). Nothing here imports Airflow.

In a test::

    from airflow_provider_xai_batch.emulator import EmulatorServer

    with EmulatorServer(api_key="k", processing_rate=50, error_rate=0.1) as emu:
        emu.faults.inject("add_requests", status=503)      # the next add call answers 503
        run_client_against(emu.url, api_key="k")
        assert emu.answers(503, "add_requests") == 1

Without a network, on a clock you move by hand::

    service = BatchService(EmulatorConfig(processing_rate=1.0), ManualClock(1_788_000_000))
    batch = service.create_batch("nightly")

From a shell: ``xai-batch-emulator --port 8787 --api-key local-key --processing-rate 20``.
"""

from __future__ import annotations

from airflow_provider_xai_batch.emulator.clock import Clock, ManualClock, SystemClock
from airflow_provider_xai_batch.emulator.config import EmulatorConfig
from airflow_provider_xai_batch.emulator.errors import ServiceError
from airflow_provider_xai_batch.emulator.faults import FaultPlan
from airflow_provider_xai_batch.emulator.request_log import LoggedRequest, RequestLog
from airflow_provider_xai_batch.emulator.server import EmulatorServer
from airflow_provider_xai_batch.emulator.state import BatchService

__all__ = [
    "BatchService",
    "Clock",
    "EmulatorConfig",
    "EmulatorServer",
    "FaultPlan",
    "LoggedRequest",
    "ManualClock",
    "RequestLog",
    "ServiceError",
    "SystemClock",
]
