"""Many waits: thousands of batches waited on at once, over two real triggerers.

A CeleryExecutor deployment (``benchmarks.airflow_deployment.celery_deployment``, the one the
distributed tests use: API server, scheduler, DAG processor, two Celery workers, two triggerers,
PostgreSQL, Redis) runs one DAG: a mapped ``XAIBatchSensor`` (deferrable), one task instance per
batch, and a few loop-lag probes, deferred triggers that wake every 50 ms in the same triggerers
and note how late they wake.

The sensors are held in a pool without slots and deferred in the database by
``benchmarks.defer_held_waits``, which writes the rows a deferral writes; starting 5,000 tasks on
two cores only to see them defer would take over an hour and measure task start-up instead. The
probes run as real tasks on the Celery workers. Once every wait runs in a triggerer, the
emulator's status calls, the triggerers' CPU time and memory are measured over a few poll
intervals; then one batch in ten is cancelled and the others finish, and every wait must resume
its task instance with the matching event (``completed`` or ``cancelled``). The resumed sensors
stay held: what runs after the event is the ordinary task start this benchmark leaves out.

``MANY_WAITS_KEEP_LOGS=/some/dir`` keeps the deployment's process logs there.

Needs PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379), as the distributed tests do.

Reported: waits per triggerer; status calls reaching the emulator per wait per poll interval
(target <= 1); triggerer CPU per wait per poll interval; triggerer memory per wait (target
< 10 KiB); the worst event-loop lag a probe saw (target < 100 ms) and the longest block the
triggerers themselves warned of (target: none); waits that ended with the wrong event (target 0).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.airflow_deployment import celery_deployment
from benchmarks.harness import Row, format_table

DAG_ID = "xai_many_waits"
PROBES = 8
HELD_POOL = "xai_bench_held"
REPO = Path(__file__).resolve().parent.parent
# Time for every wait to start before the measured intervals (Airflow's own waits end after them).
START_ALLOWANCE_SECONDS = 120.0
API_KEY = "xai-bench-many-waits-key"

PROBE_MODULE = '''
import asyncio
import os
import time

from airflow.triggers.base import BaseTrigger, TriggerEvent


class LoopLagProbe(BaseTrigger):
    """Wakes every ``tick`` seconds on the triggerer's loop and notes how late it woke."""

    def __init__(self, stop_file, tick=0.05):
        super().__init__()
        self.stop_file = stop_file
        self.tick = tick

    def serialize(self):
        return ("xai_bench_probe.LoopLagProbe", {"stop_file": self.stop_file, "tick": self.tick})

    async def run(self):
        worst, ticks = 0.0, 0
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(self.tick)
            worst = max(worst, time.perf_counter() - asked - self.tick)
            ticks += 1
            if ticks % 20 == 0 and os.path.exists(self.stop_file):
                break
        yield TriggerEvent({"worst_lag": worst, "triggerer": os.environ.get("XAI_TEST_PROCESS")})
'''

DAG_SOURCE = """
import pendulum
from airflow.sdk import DAG, BaseOperator

from airflow_provider_xai_batch.sensors.batch import XAIBatchSensor
from xai_bench_probe import LoopLagProbe


class LagProbe(BaseOperator):
    def __init__(self, stop_file, slot, **kwargs):
        super().__init__(**kwargs)
        self.stop_file = stop_file
        self.slot = slot

    def execute(self, context):
        self.defer(trigger=LoopLagProbe(self.stop_file), method_name="done")

    def done(self, context, event=None):
        return event


with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False) as dag:
    XAIBatchSensor.partial(
        task_id="wait", deferrable=True, poke_interval={poll_interval}, timeout=3600, retries=0,
        pool={pool!r},
    ).expand(batch_id={batch_ids!r})
    LagProbe.partial(task_id="probe", stop_file={stop_file!r}).expand(slot=list(range({probes})))
"""


def _seed(emulator: Any, waits: int) -> list[str]:
    import httpx

    request = {
        "batch_request_id": "only",
        "batch_request": {
            "chat_get_completion": {"model": "grok-4.3", "messages": [{"role": "user", "content": "x"}]}
        },
    }
    ids: list[str] = []
    with httpx.Client(base_url=emulator.url, headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        for index in range(waits):
            batch_id = client.post("/v1/batches", json={"name": f"wait-{index}"}).json()["batch_id"]
            client.post(f"/v1/batches/{batch_id}/requests", json={"batch_requests": [request]})
            ids.append(batch_id)
    return ids


def _tree(processes: list[Any]) -> list[Any]:
    import psutil

    found: list[Any] = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            found.extend([process, *process.children(recursive=True)])
    return found


def _cpu(processes: list[Any]) -> float:
    import psutil

    total = 0.0
    for each in _tree(processes):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = each.cpu_times()
            total += times.user + times.system
    return total


def _rss(processes: list[Any]) -> int:
    """Resident bytes of the triggerers with their trigger-runner children."""
    import psutil

    total = 0
    for each in _tree(processes):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += each.memory_info().rss
    return total


def _find(value: Any, key: str) -> Any:
    """The first value under ``key`` anywhere in a decoded JSON document (next_kwargs is nested)."""
    if isinstance(value, dict):
        if key in value:
            return value[key]
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            found = _find(item, key)
            if found is not None:
                return found
    return None


def _defer_held(
    airflow: Any, batch_ids: list[str], tmp: Path, poll_interval: float, below: int, kind: str, timeout: float
) -> int:
    ids_path = tmp / "batch-ids.json"
    ids_path.write_text(json.dumps(batch_ids))
    env = {**airflow.env, "PYTHONPATH": os.pathsep.join([str(REPO), airflow.env.get("PYTHONPATH", "")])}
    arguments = [DAG_ID, "wait", str(ids_path), str(poll_interval), str(timeout), str(below), kind]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.defer_held_waits", *arguments],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"deferring the held waits failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return int(done.stdout.strip().splitlines()[-1])


def _blocked(airflow: Any) -> dict[str, list[float]]:
    """Airflow's own check: a triggerer warns when its loop was blocked for more than 0.2 s."""
    return {
        name: [float(value) for value in re.findall(r"async thread was blocked for ([0-9.]+) seconds", text)]
        for name, text in airflow.process_logs().items()
        if name.startswith("triggerer")
    }


def measure(
    kind: str, waits: int, poll_interval: float, intervals: int, airflow_env: dict[str, str] | None = None
) -> dict[str, Any]:
    """One deployment, ``waits`` held sensors deferred with ``kind`` triggers; what it measured.

    ``kind`` is ``"xai"`` (our trigger, polling the emulator) or ``"sleep"`` (Airflow's own
    ``DateTimeTrigger``: the deployment's cost of a wait that does nothing, all ending at one moment
    after the measured intervals, as ours end when their batches are released).
    """
    import httpx
    import psutil

    polling = kind == "xai"
    flags = {"processing_rate": 0.0001, "create_rate_limit": 0, "add_rate_limit": 0}
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="xai-many-waits-")))
        env = {
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(waits + PROBES + 10),
            "AIRFLOW__CORE__MAX_MAP_LENGTH": str(max(1024, waits)),
            # Room for a little over half of the waits each: both triggerers carry a share.
            "AIRFLOW__TRIGGERER__CAPACITY": str((waits + PROBES) // 2 + 10),
            **(airflow_env or {}),
        }
        airflow = stack.enter_context(celery_deployment(tmp, env, worker_concurrency=4, parallelism=16))
        emulator = airflow.start_emulator(API_KEY, **flags)
        batch_ids = _seed(emulator, waits) if polling else [f"none-{index}" for index in range(waits)]
        cancelled = set(batch_ids[::10])
        stop_file = tmp / "stop-probes"
        airflow.env["AIRFLOW_CONN_XAI_DEFAULT"] = emulator.connection()
        (airflow.python_path / "xai_bench_probe.py").write_text(PROBE_MODULE)
        (airflow.dags_folder / f"{DAG_ID}.py").write_text(
            DAG_SOURCE.format(
                dag_id=DAG_ID,
                poll_interval=poll_interval,
                batch_ids=batch_ids,
                stop_file=str(stop_file),
                probes=PROBES,
                pool=HELD_POOL,
            )
        )
        airflow.start()
        airflow.api.post("/api/v2/pools", {"name": HELD_POOL, "slots": 0})
        airflow.wait_for_dags({DAG_ID}, timeout=300)
        triggerers = [
            psutil.Process(airflow.processes.running[name].popen.pid)
            for name in ("triggerer-1", "triggerer-2")
        ]
        airflow.api.trigger(DAG_ID)

        def count(sql: str) -> int:
            rows = airflow.query(sql, DAG_ID)
            return int(rows[0][0]) if rows else 0

        airflow.wait_for(
            "the probes to be deferred in a triggerer",
            lambda: (
                count(
                    "SELECT count(*) FROM task_instance ti JOIN trigger t ON t.id = ti.trigger_id "
                    "WHERE ti.dag_id = %s AND ti.task_id = 'probe' AND t.triggerer_id IS NOT NULL"
                )
                >= PROBES
            ),
            600,
        )
        airflow.wait_for(
            "the waits to be scheduled and held",
            lambda: (
                count(
                    "SELECT count(*) FROM task_instance WHERE dag_id = %s AND task_id = 'wait' AND state = 'scheduled'"
                )
                >= waits
            ),
            600,
        )
        # Memory per wait is read between a first share of the waits and all of them, so what the
        # first trigger costs once (importing the provider, a client) is not counted per wait.
        first = max(1, waits // 50)

        def running(number: int) -> Callable[[], bool]:
            def check() -> bool:
                started = count(
                    "SELECT count(*) FROM task_instance ti JOIN trigger t ON t.id = ti.trigger_id "
                    "WHERE ti.dag_id = %s AND ti.task_id = 'wait' AND t.triggerer_id IS NOT NULL"
                )
                # Each of our triggers polls once as it starts: running means polled.
                return started >= number and (not polling or emulator.calls("get_batch") >= number)

            return check

        deferring_started = time.monotonic()
        # Airflow's own waits all end at one moment, well after the measured intervals, as ours
        # end when their batches are released: the burst of events is part of what is compared.
        release_at = time.time() + START_ALLOWANCE_SECONDS + (intervals + 1) * poll_interval

        def hold() -> float:
            return release_at - time.time() if not polling else 3600.0

        deferred = _defer_held(airflow, batch_ids, tmp, poll_interval, first, kind, hold())
        airflow.wait_for(f"the first {first} waits to run", running(first), 600)
        time.sleep(3)
        rss_before = _rss(triggerers)
        deferred += _defer_held(airflow, batch_ids, tmp, poll_interval, waits, kind, hold())
        airflow.wait_for("every wait to run in a triggerer", running(waits), 1800)
        deferring_seconds = time.monotonic() - deferring_started
        blocked_while_starting = _blocked(airflow)
        spread = dict(
            airflow.query(
                "SELECT job.hostname, count(*) FROM task_instance ti JOIN trigger t ON t.id = ti.trigger_id "
                "JOIN job ON job.id = t.triggerer_id WHERE ti.dag_id = %s AND ti.task_id = 'wait' "
                "GROUP BY job.hostname",
                DAG_ID,
            )
        )
        calls_before, cpu_before, started = emulator.calls("get_batch"), _cpu(triggerers), time.monotonic()
        time.sleep(intervals * poll_interval)
        calls_after, cpu_after, elapsed = (
            emulator.calls("get_batch"),
            _cpu(triggerers),
            time.monotonic() - started,
        )
        rss_after = _rss(triggerers)
        blocked_while_waiting = _blocked(airflow)

        if polling:
            with httpx.Client(
                base_url=emulator.url, headers={"Authorization": f"Bearer {API_KEY}"}
            ) as client:
                for batch_id in cancelled:
                    client.post(f"/v1/batches/{batch_id}:cancel").raise_for_status()
            emulator.configure(processing_rate=0)
            released = time.monotonic()
        else:
            released = time.monotonic() + max(0.0, release_at - time.time())
        airflow.wait_for(
            "every wait to end",
            lambda: (
                count(
                    "SELECT count(*) FROM task_instance WHERE dag_id = %s AND task_id = 'wait' "
                    "AND state = 'scheduled' AND trigger_id IS NULL AND next_method IS NOT NULL"
                )
                >= waits
            ),
            max(0.0, released - time.monotonic()) + 3 * poll_interval + 900,
        )
        ending_seconds = time.monotonic() - released
        stop_file.write_text("stop")
        airflow.wait_for(
            "the probes to report",
            lambda: (
                len(airflow.query("SELECT 1 FROM xcom WHERE dag_id = %s AND task_id = 'probe'", DAG_ID))
                >= PROBES
            ),
            300,
        )
        blocked = _blocked(airflow)
        if keep := os.environ.get("MANY_WAITS_KEEP_LOGS"):
            # The process logs go with the deployment's folder; keep them for a closer look.
            shutil.copytree(airflow.processes.log_dir, Path(keep) / kind, dirs_exist_ok=True)
        events = airflow.query(
            "SELECT map_index, next_kwargs::text FROM task_instance WHERE dag_id = %s AND task_id = 'wait'",
            DAG_ID,
        )
        probes = [
            json.loads(value)
            for (value,) in airflow.query(
                "SELECT value::text FROM xcom WHERE dag_id = %s AND task_id = 'probe'", DAG_ID
            )
        ]

    wrong: int | None = None
    if polling:
        expected = {
            index: ("cancelled" if batch_id in cancelled else "completed")
            for index, batch_id in enumerate(batch_ids)
        }
        seen = {index: _find(json.loads(text), "batch_status") if text else None for index, text in events}
        wrong = sum(1 for index, status in expected.items() if seen.get(index) != status)

    # The watchdog's lines are logged at info level: above it, no warning says nothing.
    level = (airflow_env or {}).get("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO").upper()
    watched = level in ("DEBUG", "INFO")

    def longest(found: dict[str, list[float]]) -> float:
        if not watched:
            return float("nan")
        return max((value for values in found.values() for value in values), default=0.0)

    lag_by_triggerer: dict[str, float] = {}
    for probe in probes:
        name = str(probe["triggerer"])
        lag_by_triggerer[name] = max(lag_by_triggerer.get(name, 0.0), float(probe["worst_lag"]))
    return {
        "kind": kind,
        "spread": spread,
        "deferred_in_database": deferred,
        "calls_per_wait_per_interval": (calls_after - calls_before) / (waits * elapsed / poll_interval),
        "cpu_ms_per_wait_per_interval": (cpu_after - cpu_before) * 1000 / (waits * elapsed / poll_interval),
        "kib_per_wait": (rss_after - rss_before) / 1024 / (waits - first),
        "worst_lag_ms": max(float(probe["worst_lag"]) for probe in probes) * 1000,
        "worst_lag_by_triggerer": lag_by_triggerer,
        "longest_block_starting_s": longest(blocked_while_starting),
        "longest_block_waiting_s": longest(
            {
                name: values[len(blocked_while_starting.get(name, [])) :]
                for name, values in blocked_while_waiting.items()
            }
        ),
        "longest_block_s": longest(blocked),
        "blocked_warnings": sum(len(values) for values in blocked.values()),
        "wrong_events": wrong,
        "triggerer_rss_mb_before_after": [round(rss_before / 2**20, 1), round(rss_after / 2**20, 1)],
        "deferring_seconds": deferring_seconds,
        "ending_seconds": ending_seconds,
        "measured_seconds": elapsed,
        "status_calls": calls_after - calls_before,
    }


def run(
    waits: int = 5000,
    poll_interval: float = 30.0,
    intervals: int = 3,
    airflow_env: dict[str, str] | None = None,
) -> list[Row]:
    """Our waits, then the same number of Airflow's own ``DateTimeTrigger`` waits as the baseline.

    ``airflow_env`` (``AIRFLOW__...`` settings) applies to both deployments.
    """
    ours = measure("xai", waits, poll_interval, intervals, airflow_env)
    base = measure("sleep", waits, poll_interval, intervals, airflow_env)
    label = f"{waits:,} waits, poll {poll_interval:g} s"
    edges = (intervals + 1) / intervals
    return [
        Row(
            "many waits",
            f"{label}: waits per triggerer (min)",
            float(min(ours["spread"].values(), default=0)),
            float(min(base["spread"].values(), default=0)),
            notes={"ours": ours, "baseline": base},
        ),
        Row(
            "many waits",
            f"{label}: status calls per wait per poll interval",
            ours["calls_per_wait_per_interval"],
            None,
            "",
            # A window not aligned with a wait's schedule may hold one poll more of it.
            f"<= 1 (+1 per wait at the edges: {edges:.2f})",
            ours["calls_per_wait_per_interval"] <= edges,
        ),
        Row(
            "many waits",
            f"{label}: triggerer CPU per wait per poll interval; baseline DateTimeTrigger",
            ours["cpu_ms_per_wait_per_interval"],
            base["cpu_ms_per_wait_per_interval"],
            "ms",
        ),
        Row(
            "many waits",
            f"{label}: triggerer memory per wait; baseline DateTimeTrigger",
            ours["kib_per_wait"],
            base["kib_per_wait"],
            "KiB",
            "< 10 KiB",
            ours["kib_per_wait"] < 10,
        ),
        Row(
            "many waits",
            f"{label}: triggerer memory per wait above the baseline's",
            ours["kib_per_wait"] - base["kib_per_wait"],
            None,
            "KiB",
        ),
        Row(
            "many waits",
            f"{label}: worst event-loop lag (probes, every 50 ms); baseline DateTimeTrigger",
            ours["worst_lag_ms"],
            base["worst_lag_ms"],
            "ms",
            "< 100 ms",
            ours["worst_lag_ms"] < 100,
        ),
        Row(
            "many waits",
            f"{label}: longest blocked loop the triggerers warned of, starting",
            ours["longest_block_starting_s"],
            base["longest_block_starting_s"],
            "s",
        ),
        Row(
            "many waits",
            f"{label}: longest blocked loop the triggerers warned of, waiting",
            ours["longest_block_waiting_s"],
            base["longest_block_waiting_s"],
            "s",
        ),
        Row(
            "many waits",
            f"{label}: longest blocked loop the triggerers warned of, whole run",
            ours["longest_block_s"],
            base["longest_block_s"],
            "s",
            "none",
            ours["longest_block_s"] == 0.0,
        ),
        Row(
            "many waits",
            f"{label}: waits ended with the wrong event",
            float(ours["wrong_events"] or 0),
            None,
            "",
            "0",
            ours["wrong_events"] == 0,
        ),
        Row(
            "many waits",
            f"{label}: seconds until every wait ran in a triggerer",
            ours["deferring_seconds"],
            base["deferring_seconds"],
            "s",
        ),
        Row(
            "many waits",
            f"{label}: seconds until every wait ended after release",
            ours["ending_seconds"],
            base["ending_seconds"],
            "s",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--waits", type=int, default=5000)
    parser.add_argument("--poll-interval", type=float, default=30.0)
    parser.add_argument("--intervals", type=int, default=3)
    parser.add_argument("--only", choices=("xai", "sleep"), help="one side alone, its measures as JSON")
    parser.add_argument(
        "--airflow-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an Airflow setting for both deployments, e.g. AIRFLOW__LOGGING__LOGGING_LEVEL=WARNING",
    )
    args = parser.parse_args()
    airflow_env = dict(item.split("=", 1) for item in args.airflow_env)
    if args.only:
        measured = measure(args.only, args.waits, args.poll_interval, args.intervals, airflow_env)
        print(json.dumps(measured, indent=1, default=str))
        return
    rows = run(args.waits, args.poll_interval, args.intervals, airflow_env)
    print(format_table(rows))
    print(json.dumps(rows[0].notes, indent=1, default=str))


if __name__ == "__main__":
    main()
