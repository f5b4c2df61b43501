"""One team limit, many workers: concurrent senders share the emulator's add limit.

Each sender is a separate process with a client of its own, as Airflow workers are; they all add
to one batch, one call at a time, for the same stretch of time, under the team's add limit scaled
down (``--add-rate-limit`` calls per ``--add-rate-window`` seconds). Reported per sender count,
for today's pacing (each client paces itself to the whole limit, as if alone) and for the shared
pacing (:class:`~airflow_provider_xai_batch.client.pacing.SharedWindowPacer`), in the same run:

* the fraction of the allowed call rate the senders achieved together, counted after the first
  window (where any pacing may burst) up to the end;
* the share of add calls the emulator answered 429;
* requests lost: sent by a sender (or given up on after the retries ran out) but not in the batch.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import API_KEY, Row, emulator_process, format_table, in_child

SENDER_COUNTS = (1, 2, 4, 8)
VARIANTS = ("before", "after")


def _request(sender: int, index: int) -> dict[str, Any]:
    return {
        "batch_request_id": f"s{sender}-{index:06d}",
        "batch_request": {
            "chat_get_completion": {"model": "grok-4.3", "messages": [{"role": "user", "content": "x"}]}
        },
    }


def sender(
    url: str,
    batch_id: str,
    sender_id: int,
    variant: str,
    limit: int,
    window: float,
    barrier: str,
    duration: float,
    queue: Any,
) -> None:
    """One worker: add one request per call for ``duration`` seconds from the common start."""
    from airflow_provider_xai_batch.client import ClientLimits, XAIBatchClient
    from airflow_provider_xai_batch.client.policy import SlidingWindowLimiter

    limits = ClientLimits(add_calls=limit, add_window_seconds=window)
    accepted: list[float] = []
    failed = 0
    with XAIBatchClient(API_KEY, base_url=url, limits=limits) as client:
        if variant == "before":
            # Today's pacing: the whole team limit, as if this client were alone.
            client._limiters["add"] = SlidingWindowLimiter(limit, window)
        _, stop_at = _common_start(Path(barrier), sender_id, duration)
        index = 0
        while time.time() < stop_at:
            try:
                client.add_requests(batch_id, [_request(sender_id, index)])
                accepted.append(time.time())
            except Exception:  # out of retries: an add task would fail here
                failed += 1
            index += 1
    queue.put({"accepted": accepted, "failed": failed})


def _common_start(barrier: Path, sender_id: int, duration: float) -> tuple[float, float]:
    """Say this sender is ready, wait for the start time every sender shares; (start, stop)."""
    (barrier / f"ready-{sender_id}").touch()
    start_file = barrier / "start"
    while not start_file.exists():
        time.sleep(0.05)
    start_at = float(start_file.read_text())
    time.sleep(max(0.0, start_at - time.time()))
    return start_at, start_at + duration


def _one_run(
    variant: str, senders: int, limit: int, window: float, windows: int, settle: float = 1.0
) -> dict[str, Any]:
    import threading

    import httpx

    flags = ("--add-rate-limit", str(limit), "--add-rate-window", str(window))
    with emulator_process(*flags) as url:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        batch_id = httpx.post(f"{url}/v1/batches", json={"name": "shared"}, headers=headers).json()[
            "batch_id"
        ]
        reports: list[dict[str, Any]] = [{} for _ in range(senders)]
        barrier = Path(tempfile.mkdtemp(prefix="xai-shared-limit-"))
        duration = windows * window

        def run_sender(index: int) -> None:
            reports[index] = in_child(
                sender, url, batch_id, index, variant, limit, window, str(barrier), duration, timeout=600
            )

        threads = [threading.Thread(target=run_sender, args=(index,)) for index in range(senders)]
        for thread in threads:
            thread.start()
        # Every process is up and has its client before the common start, however busy the machine.
        while len(list(barrier.glob("ready-*"))) < senders:
            time.sleep(0.05)
        start_at = time.time() + settle
        stop_at = start_at + duration
        (barrier / "start.tmp").write_text(repr(start_at))
        (barrier / "start.tmp").rename(barrier / "start")
        for thread in threads:
            thread.join()
        stats = httpx.get(f"{url}/_emulator/stats", headers=headers).json()
        batch = httpx.get(f"{url}/v1/batches/{batch_id}", headers=headers).json()
    shutil.rmtree(barrier, ignore_errors=True)
    accepted = [moment for report in reports for moment in report["accepted"]]
    counted = sum(1 for moment in accepted if start_at + window <= moment < stop_at)
    in_batch = int(batch.get("state", {}).get("num_requests", batch.get("num_requests", 0)))
    calls = stats["calls"].get("add_requests", 0)
    refused = stats["answers_by_route"].get("add_requests", {}).get("429", 0)
    return {
        "rate_fraction": counted / ((windows - 1) * limit),
        "refused_share": refused / max(calls, 1),
        "calls": calls,
        "refused": refused,
        "sent": len(accepted),
        "failed": sum(report["failed"] for report in reports),
        "in_batch": in_batch,
        "lost": sum(report["failed"] for report in reports) + abs(len(accepted) - in_batch),
    }


def run(
    limit: int = 50,
    window: float = 5.0,
    windows: int = 10,
    counts: tuple[int, ...] = SENDER_COUNTS,
    settle: float = 1.0,
) -> list[Row]:
    rows: list[Row] = []
    for senders in counts:
        measured = {
            variant: _one_run(variant, senders, limit, window, windows, settle) for variant in VARIANTS
        }
        after, before = measured["after"], measured["before"]
        rows.append(
            Row(
                "shared limit",
                f"{senders} sender(s): rate / allowed ({limit} per {window:g} s)",
                after["rate_fraction"],
                before["rate_fraction"],
                "",
                ">= 0.85",
                after["rate_fraction"] >= 0.85,
                notes=measured,
            )
        )
        rows.append(
            Row(
                "shared limit",
                f"{senders} sender(s): share of calls answered 429",
                after["refused_share"],
                before["refused_share"],
                "",
                "<= 0.02",
                after["refused_share"] <= 0.02,
                notes={
                    variant: {"calls": m["calls"], "429": m["refused"]} for variant, m in measured.items()
                },
            )
        )
        rows.append(
            Row(
                "shared limit",
                f"{senders} sender(s): requests lost",
                after["lost"],
                before["lost"],
                "",
                "0",
                after["lost"] == 0,
                notes={
                    variant: {"sent": m["sent"], "in batch": m["in_batch"]} for variant, m in measured.items()
                },
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument("--windows", type=int, default=10)
    parser.add_argument("--senders", default=",".join(map(str, SENDER_COUNTS)))
    args = parser.parse_args()
    counts = tuple(int(value) for value in args.senders.split(","))
    rows = run(args.limit, args.window, args.windows, counts)
    print(format_table(rows))
    for row in rows:
        if row.metric.endswith("429"):
            print(row.metric, row.notes)


if __name__ == "__main__":
    main()
