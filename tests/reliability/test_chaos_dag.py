"""A 50,000-request pipeline under injected faults ends exactly once: nothing lost, nothing twice.

About one API call in ten meets a fault (429, 500, 503, a connection dropped before or after the
call is applied, or a slow answer), chosen from a fixed seed. The DAG is the one users write:
files -> create -> add -> deferrable sensor -> results export, with task retries allowed.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from reliability_support import FaultLedger, write_shards
from support.constants import TEST_API_KEY
from support.dags import run_dag_file, task_states, task_tries
from support.emulator import held_request_ids
from support.jsonl import jsonl_rows

from airflow_provider_xai_batch.emulator import EmulatorServer

REQUESTS = 50_000
SHARDS = 5
FAULT_RATE = 0.1
SEED = 20260828
FAULT_KINDS = ("429", "500", "503", "drop_before", "drop_after", "slow")
SCRIPTED: dict[str, dict[str, Any]] = {
    "429": {"status": 429},
    "500": {"status": 500},
    "503": {"status": 503},
    "drop_before": {"drop": "before"},
    "drop_after": {"drop": "after"},
    "slow": {"latency_ms": 200},
}

CHAOS_DAG = """
import datetime
import pendulum
from airflow.sdk import DAG
from airflow_provider_xai_batch.operators.batch import XAIAddBatchRequestsOperator, XAICreateBatchOperator
from airflow_provider_xai_batch.operators.results import XAIBatchResultsOperator
from airflow_provider_xai_batch.sensors.batch import XAIBatchSensor

with DAG(
    {dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1),
    default_args={{"retries": 2, "retry_delay": datetime.timedelta(seconds=1)}},
) as dag:
    create = XAICreateBatchOperator(task_id="create", name="chaos")
    add = XAIAddBatchRequestsOperator(task_id="add", batch_id=create.output, source={source!r})
    wait = XAIBatchSensor(
        task_id="wait", batch_id=create.output, deferrable=True, poke_interval=1, timeout=600,
    )
    export = XAIBatchResultsOperator(
        task_id="export", batch_id=create.output, output_path={output!r}, page_size=500,
    )
    create >> add >> wait >> export
"""


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_50k_requests_survive_a_fault_on_one_call_in_ten(
    dags_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs, output = tmp_path / "input", tmp_path / "output"
    expected = write_shards(inputs, REQUESTS, SHARDS)
    assert len(set(expected)) == REQUESTS

    with EmulatorServer(
        api_key=TEST_API_KEY,
        seed=SEED,
        fault_rate=FAULT_RATE,
        slow_ms=200,
        processing_rate=5_000,
    ) as emulator:
        ledger = FaultLedger(emulator)
        # On top of the random faults, the first add calls meet one fault of each kind for sure:
        # a call applied but never answered (drop_after) is the case that could duplicate work.
        for kind in FAULT_KINDS:
            emulator.faults.inject("add_requests", **SCRIPTED[kind])
        # The batch is created but the answer is lost; then the sensor's first looks meet a 503.
        emulator.faults.inject("create_batch", drop="after")
        emulator.faults.inject("get_batch", status=503, count=2)
        # Add calls of 1,000 requests and result pages of 500 make ~200 calls for faults to hit.
        connection = {
            "conn_type": "xai",
            "password": TEST_API_KEY,
            "host": emulator.url,
            "extra": {"max_requests_per_call": 1000},
        }
        monkeypatch.setenv("AIRFLOW_CONN_XAI_DEFAULT", json.dumps(connection))
        source = CHAOS_DAG.format(
            dag_id="chaos_50k", source=f"file://{inputs}/part-*.jsonl*", output=f"file://{output}"
        )
        started = time.monotonic()
        run: Any = run_dag_file(source, "chaos_50k", dags_folder)
        elapsed = time.monotonic() - started

        assert run.state == "success", task_states(run)
        batches = emulator.service.list_batches(limit=100)["batches"]
        assert len(batches) == 1, "a lost answer to create must not leave a second batch behind"
        batch = batches[0]
        held = held_request_ids(emulator, batch["batch_id"])
        stats = emulator.stats
        emulator_calls = emulator.calls()

    # The batch holds exactly the input set.
    held_counts = Counter(held)
    assert len(held) == REQUESTS and set(held) == set(expected)
    assert max(held_counts.values()) == 1

    # Every request id appears exactly once across succeeded.jsonl and failed.jsonl.
    succeeded = [row["batch_request_id"] for row in jsonl_rows(output / "succeeded.jsonl")]
    failed = [row["batch_request_id"] for row in jsonl_rows(output / "failed.jsonl")]
    written = Counter(succeeded + failed)
    lost = set(expected) - set(written)
    duplicates = sum(count - 1 for count in written.values())
    assert not lost and duplicates == 0 and set(written) == set(expected)
    assert failed, "some prompts were made to fail; failed.jsonl must hold them"

    # The manifest reconciles with the batch's own counters.
    manifest = json.loads((output / "manifest.json").read_text())
    state = batch["state"]
    assert manifest["reconciled"] is True, manifest["notes"]
    assert manifest["total"] == REQUESTS == state["num_requests"]
    assert manifest["succeeded"] == state["num_success"] == len(succeeded)
    assert manifest["failed"] == state["num_error"] + state["num_cancelled"] == len(failed)

    # Faults really happened, of every kind, and were survived.
    for kind in FAULT_KINDS:
        assert ledger.by_kind[kind] >= 1, dict(ledger.by_kind)
    assert ledger.by_route[("create_batch", "drop_after")] == 1 and stats["calls"]["create_batch"] == 1
    random_faults = ledger.total - ledger.scripted
    assert random_faults >= 0.05 * emulator_calls, (random_faults, emulator_calls)

    print(
        "\nchaos run: "
        + json.dumps(
            {
                "requests_input": REQUESTS,
                "requests_held": len(held),
                "succeeded": len(succeeded),
                "failed": len(failed),
                "requests_lost": len(lost),
                "duplicates": duplicates,
                "api_calls": stats["calls"],
                "faults_injected_by_kind": dict(sorted(ledger.by_kind.items())),
                "faults_survived_by_kind": dict(sorted(ledger.by_kind.items())),
                "faults_random": random_faults,
                "faults_scripted": ledger.scripted,
                "faults_by_route": {
                    f"{route}:{kind}": n for (route, kind), n in sorted(ledger.by_route.items())
                },
                "task_tries": task_tries(run),
                "seconds": round(elapsed, 1),
            },
            indent=1,
        )
    )
