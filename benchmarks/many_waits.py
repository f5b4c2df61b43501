"""Many waits: 1,000 batches waited on at once by deferrable sensors, over two real triggerers.

A CeleryExecutor deployment (``benchmarks.airflow_deployment.celery_deployment``, the one the
distributed tests use: API server, scheduler, DAG processor, two Celery workers, two triggerers,
PostgreSQL, Redis) runs one DAG: a mapped
``XAIBatchSensor`` (deferrable), one task instance per batch, and a few loop-lag probes, deferred
triggers that wake every 50 ms in the same triggerers and note how late they wake. Once every
wait is deferred, the emulator's status calls and the triggerers' CPU time are measured over a few
poll intervals; then one batch in ten is cancelled and the others finish, and every wait must end
with the matching outcome (success for a completed batch, failure for a cancelled one).

Needs PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379), as the distributed tests do.

Reported: waits per triggerer; status calls reaching the emulator per wait per poll interval
(target <= 1); triggerer CPU per wait per poll interval; the worst event-loop lag a probe saw;
waits that ended with the wrong outcome (target 0).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.airflow_deployment import celery_deployment
from benchmarks.harness import Row, format_table

DAG_ID = "xai_many_waits"
PROBES = 8
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
        task_id="wait", deferrable=True, poke_interval={poll_interval}, timeout=3600, retries=0
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


def _cpu(processes: list[Any]) -> float:
    import psutil

    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            for each in [process, *process.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    times = each.cpu_times()
                    total += times.user + times.system
    return total


def run(waits: int = 1000, poll_interval: float = 30.0, intervals: int = 3) -> list[Row]:
    import httpx
    import psutil

    flags = {"processing_rate": 0.0001, "create_rate_limit": 0, "add_rate_limit": 0}
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="xai-many-waits-")))
        env = {
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(waits + PROBES + 10),
            # Room for a little over half of the waits each: both triggerers carry a share.
            "AIRFLOW__TRIGGERER__CAPACITY": str((waits + PROBES) // 2 + 10),
        }
        airflow = stack.enter_context(celery_deployment(tmp, env, worker_concurrency=4, parallelism=16))
        emulator = airflow.start_emulator(API_KEY, **flags)
        batch_ids = _seed(emulator, waits)
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
            )
        )
        airflow.start()
        airflow.wait_for_dags({DAG_ID}, timeout=300)
        airflow.api.trigger(DAG_ID)
        deferring_started = time.monotonic()

        def deferred_and_held() -> bool:
            rows = airflow.query(
                "SELECT count(*) FROM task_instance ti JOIN trigger t ON t.id = ti.trigger_id "
                "WHERE ti.dag_id = %s AND ti.state = 'deferred' AND t.triggerer_id IS NOT NULL",
                DAG_ID,
            )
            return bool(rows) and rows[0][0] >= waits + PROBES

        airflow.wait_for("every wait to be deferred in a triggerer", deferred_and_held, 3600)
        # Each sensor reads its batch once before deferring, and each trigger polls once as it
        # starts: measure from when every trigger has started polling.
        airflow.wait_for("every trigger to poll", lambda: emulator.calls("get_batch") >= 2 * waits, 600)
        deferring_seconds = time.monotonic() - deferring_started
        triggerers = [
            psutil.Process(airflow.processes.running[name].popen.pid)
            for name in ("triggerer-1", "triggerer-2")
        ]
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

        with httpx.Client(base_url=emulator.url, headers={"Authorization": f"Bearer {API_KEY}"}) as client:
            for batch_id in cancelled:
                client.post(f"/v1/batches/{batch_id}:cancel").raise_for_status()
        emulator.configure(processing_rate=0)
        released = time.monotonic()
        airflow.wait_for(
            "every wait to end",
            lambda: (
                not airflow.query(
                    "SELECT 1 FROM task_instance WHERE dag_id = %s AND task_id = 'wait' "
                    "AND state NOT IN ('success', 'failed')",
                    DAG_ID,
                )
            ),
            3 * poll_interval + 600,
        )
        ending_seconds = time.monotonic() - released
        stop_file.write_text("stop")
        airflow.wait_for(
            "the probes to report",
            lambda: (
                len(airflow.query("SELECT 1 FROM xcom WHERE dag_id = %s AND task_id = 'probe'", DAG_ID))
                >= PROBES
            ),
            120,
        )
        # Airflow's own check: a triggerer warns when its loop was blocked for more than 0.2 s.
        blocked = {
            name: max(
                (
                    float(value)
                    for value in re.findall(r"async thread was blocked for ([0-9.]+) seconds", text)
                ),
                default=0.0,
            )
            for name, text in airflow.process_logs().items()
            if name.startswith("triggerer")
        }
        outcomes = airflow.query(
            "SELECT map_index, state FROM task_instance WHERE dag_id = %s AND task_id = 'wait'", DAG_ID
        )
        probes = [
            json.loads(value)
            for (value,) in airflow.query(
                "SELECT value::text FROM xcom WHERE dag_id = %s AND task_id = 'probe'", DAG_ID
            )
        ]

    expected = {
        index: ("failed" if batch_id in cancelled else "success") for index, batch_id in enumerate(batch_ids)
    }
    wrong = sum(1 for index, state in outcomes if expected.get(index) != state) + (waits - len(outcomes))
    per_wait_per_interval = (calls_after - calls_before) / (waits * elapsed / poll_interval)
    cpu_ms = (cpu_after - cpu_before) * 1000 / (waits * elapsed / poll_interval)
    worst_lag = max(float(probe["worst_lag"]) for probe in probes)
    lag_by_triggerer: dict[str, float] = {}
    for probe in probes:
        name = str(probe["triggerer"])
        lag_by_triggerer[name] = max(lag_by_triggerer.get(name, 0.0), float(probe["worst_lag"]))
    notes = {
        "spread": spread,
        "worst_lag_by_triggerer": lag_by_triggerer,
        "blocked_warnings_by_triggerer": blocked,
        "deferring_seconds": round(deferring_seconds),
        "ending_seconds": round(ending_seconds),
        "measured_seconds": round(elapsed),
        "status_calls": calls_after - calls_before,
    }
    label = f"{waits} waits, poll {poll_interval:g} s"
    return [
        Row(
            "many waits",
            f"{label}: waits per triggerer (min)",
            float(min(spread.values(), default=0)),
            notes=notes,
        ),
        Row(
            "many waits",
            f"{label}: status calls per wait per poll interval",
            per_wait_per_interval,
            None,
            "",
            # A window not aligned with a wait's schedule may hold one poll more of it.
            f"<= 1 (+1 per wait at the edges: {(intervals + 1) / intervals:.2f})",
            per_wait_per_interval <= (intervals + 1) / intervals,
        ),
        Row("many waits", f"{label}: triggerer CPU per wait per poll interval", cpu_ms, None, "ms"),
        Row(
            "many waits",
            f"{label}: worst event-loop lag (probes)",
            worst_lag,
            None,
            "s",
            "< 1 s",
            worst_lag < 1.0,
        ),
        Row(
            "many waits",
            f"{label}: waits ended with the wrong outcome",
            float(wrong),
            None,
            "",
            "0",
            wrong == 0,
        ),
        Row(
            "many waits", f"{label}: seconds until every wait ended after release", ending_seconds, None, "s"
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--waits", type=int, default=1000)
    parser.add_argument("--poll-interval", type=float, default=30.0)
    parser.add_argument("--intervals", type=int, default=3)
    args = parser.parse_args()
    rows = run(args.waits, args.poll_interval, args.intervals)
    print(format_table(rows))
    print(json.dumps(rows[0].notes, indent=1, default=str))


if __name__ == "__main__":
    main()
