"""Pacing: add calls under a scaled-down limit, measured against the rate the limit allows.

The emulator enforces ``--add-rate-limit`` calls per ``--add-rate-window`` seconds; the client is
given the same limit. Achieved rate is measured from the first call to the start of the last one.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from benchmarks.harness import API_KEY, Row, emulator_process, format_table


def run(limit: int = 50, window: float = 5.0, windows: int = 5) -> list[Row]:
    import httpx

    from airflow_provider_xai_batch.client import ClientLimits, XAIBatchClient
    from airflow_provider_xai_batch.client.base import ClientCore

    calls = limit * windows
    flags = ("--add-rate-limit", str(limit), "--add-rate-window", str(window))
    with emulator_process(*flags) as url:
        limits = ClientLimits(add_calls=limit, add_window_seconds=window, max_requests_per_call=1)
        starts: list[float] = []
        original = ClientCore._pace_delay

        def recording(self: ClientCore, call: Any) -> float:
            delay = original(self, call)
            if call.pace == "add":
                starts.append(time.monotonic() + delay)
            return delay

        ClientCore._pace_delay = recording  # type: ignore[method-assign]
        try:
            with XAIBatchClient(API_KEY, base_url=url, limits=limits) as client:
                batch = client.create_batch("pacing")
                requests = (
                    {
                        "custom_id": f"p{i}",
                        "body": {"model": "grok-4.3", "messages": [{"role": "user", "content": "x"}]},
                    }
                    for i in range(calls)
                )
                client.add_requests(batch.batch_id, requests)
        finally:
            ClientCore._pace_delay = original  # type: ignore[method-assign]
        stats = httpx.get(f"{url}/_emulator/stats", headers={"Authorization": f"Bearer {API_KEY}"}).json()
    received = stats["calls"].get("add_requests", 0)
    throttled = stats["answers_by_route"].get("add_requests", {}).get("429", 0)
    allowed = limit / window
    # Calls are spread evenly over the window (no burst at the start): the rate is the calls after
    # the first over the time from the first to the last.
    achieved = (calls - 1) / (starts[-1] - starts[0])
    return [
        Row(
            "pacing",
            f"add calls/s ({limit} per {window:g} s)",
            achieved,
            allowed,
            "calls/s",
            ">= 0.9x",
            achieved >= 0.9 * allowed,
        ),
        Row(
            "pacing",
            "429s per call",
            throttled / max(received, 1),
            None,
            "",
            "<= 0.01",
            throttled / max(received, 1) <= 0.01,
            notes={"calls": received, "429": throttled},
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument("--windows", type=int, default=5)
    args = parser.parse_args()
    print(format_table(run(args.limit, args.window, args.windows)))


if __name__ == "__main__":
    main()
