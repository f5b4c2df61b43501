"""``XAIBatchOperator(resubmit=ResubmitPolicy(rounds=N))`` in whole DAG runs against the emulator.

The emulator fails a prompt holding ``[[fail-transient]]`` with an internal error the first time,
and lets it succeed in a later batch; ``[[fail]]`` and ``max_tokens <= 0`` fail every time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_xai_batch.client.inputs import generated_request_id
from airflow_provider_xai_batch.emulator.faults import FaultDecision
from airflow_provider_xai_batch.operators.one_task import XAIBatchOperator
from airflow_provider_xai_batch.resubmit import ResubmitPolicy

MODEL = "grok-4.3"

DAG_FILE = """
import datetime, json, pathlib
import pendulum
from airflow.sdk import DAG, task
from airflow_provider_xai_batch.operators.one_task import ResubmitPolicy, XAIBatchOperator

with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1),
         default_args={{"retries": {retries}, "retry_delay": datetime.timedelta(0)}}) as dag:
    run = XAIBatchOperator(
        task_id="run", name="resubmit", {input}, output_path={output_path!r},
        deferrable={deferrable!r}, poll_interval=0.2, timeout=60, {options}
    )

    @task
    def record(value):
        pathlib.Path({xcom!r}).write_text(json.dumps(value))

    record(run.output)
"""


def chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}], **extra}


# Four that succeed, three that fail once for a passing reason, two that never succeed.
ROWS: list[dict[str, Any]] = [
    {"body": chat("fine 0")},
    {"body": chat("[[fail-transient]] busy 1")},
    {"body": chat("fine 2")},
    {"body": chat("[[fail]] broken 3")},
    {"body": chat("[[fail-transient]] busy 4")},
    {"body": chat("fine 5")},
    {"body": chat("bad limit 6", max_tokens=-5)},
    {"body": chat("[[fail-transient]] busy 7")},
    {"body": chat("fine 8")},
]
TRANSIENT = {1, 4, 7}
LASTING = {3, 6}


def write_input(path: Path) -> dict[int, str]:
    """Write ROWS without ids; return line index (0-based) -> the id derived from file and line."""
    path.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    return {index: generated_request_id(path.as_uri(), f"line {index + 1}") for index in range(len(ROWS))}


def read_jsonl(path: Path) -> dict[str, dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return {row["batch_request_id"]: row for row in rows}


def batches(emulator: Any) -> list[dict[str, Any]]:
    """The emulator's batches, oldest first."""
    return list(reversed(emulator.service.list_batches(limit=1000)["batches"]))


def request_ids(emulator: Any, batch_id: str) -> list[str]:
    page = emulator.service.list_batch_requests(batch_id, limit=1000)
    return [row["batch_request_id"] for row in page["batch_request_metadata"]]


def states(run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def dag_source(
    dag_id: str, tmp_path: Path, *, input: str, options: str, deferrable: bool = False, retries: int = 0,
    output: bool = True,
) -> str:  # fmt: skip
    return DAG_FILE.format(
        dag_id=dag_id,
        retries=retries,
        input=input,
        output_path=str(tmp_path / "results") if output else None,
        deferrable=deferrable,
        options=options,
        xcom=str(tmp_path / "xcom.json"),
    )


@pytest.mark.parametrize(
    ("deferrable", "input_mode"),
    [(False, "inline"), (True, "inline"), (True, "file")],
    ids=["poll", "deferrable", "file-batch"],
)
def test_only_passing_failures_are_resent_and_the_results_show_each_request_once(
    run_dag: Callable[..., Any], xai_conn: Callable[..., str], emulator: Any, tmp_path: Path,
    deferrable: bool, input_mode: str,
) -> None:  # fmt: skip
    emulator.config.update({"file_ingest_seconds": 0.5})
    ids = write_input(tmp_path / "in.jsonl")
    source = dag_source(
        "resubmit_mixed", tmp_path, input=f"source={str(tmp_path / 'in.jsonl')!r}",
        options=f"resubmit=ResubmitPolicy(rounds=2), input_mode={input_mode!r}", deferrable=deferrable,
    )  # fmt: skip

    run = run_dag(source, "resubmit_mixed")

    assert run.state == "success", states(run)
    first, second = batches(emulator)  # nothing was left after round 1: no third batch
    assert bool(first.get("input_file_id")) == (input_mode == "file") and not second.get("input_file_id")
    assert sorted(request_ids(emulator, second["batch_id"])) == sorted(ids[i] for i in TRANSIENT)
    assert second["name"].startswith("resubmit-round-1-")
    manifest = json.loads((tmp_path / "results" / "manifest.json").read_text())
    assert (manifest["total"], manifest["succeeded"], manifest["failed"]) == (9, 7, 2)
    assert manifest["attempts"] == {"1": 6, "2": 3}
    assert (manifest["resubmitted"], manifest["recovered"]) == (3, 3)
    assert [item["batch_id"] for item in manifest["rounds"]] == [first["batch_id"], second["batch_id"]]
    assert manifest["reconciled"] is True
    succeeded = read_jsonl(tmp_path / "results" / "succeeded.jsonl")
    failed = read_jsonl(tmp_path / "results" / "failed.jsonl")
    assert set(succeeded) | set(failed) == set(ids.values()) and not set(succeeded) & set(failed)
    assert {request_id: row["attempts"] for request_id, row in succeeded.items()} == {
        ids[i]: 2 if i in TRANSIENT else 1 for i in range(len(ROWS)) if i not in LASTING
    }
    assert set(failed) == {ids[i] for i in LASTING} and {row["attempts"] for row in failed.values()} == {1}
    assert "max_tokens must be positive" in failed[ids[6]]["error"]
    assert json.loads((tmp_path / "xcom.json").read_text()) == manifest


def test_a_custom_policy_decides_and_rounds_stop_at_the_limit(
    run_dag: Callable[..., Any], xai_conn: Callable[..., str], emulator: Any, tmp_path: Path
) -> None:
    # Resending everything that failed: the lasting failures go round until the limit.
    requests = [{"custom_id": f"q{index}", **row} for index, row in enumerate(ROWS)]
    source = dag_source(
        "resubmit_policy", tmp_path, input=f"requests={requests!r}",
        options="resubmit=ResubmitPolicy(rounds=2, retry_if=lambda error: True)", output=False,
    )  # fmt: skip

    run = run_dag(source, "resubmit_policy")

    assert run.state == "success", states(run)
    rounds = batches(emulator)
    assert len(rounds) == 3
    assert sorted(request_ids(emulator, rounds[1]["batch_id"])) == sorted(
        f"q{i}" for i in TRANSIENT | LASTING
    )
    assert sorted(request_ids(emulator, rounds[2]["batch_id"])) == sorted(f"q{i}" for i in LASTING)
    xcom = json.loads((tmp_path / "xcom.json").read_text())
    assert xcom["batch_id"] == rounds[0]["batch_id"]
    assert xcom["rounds"] == [batch["batch_id"] for batch in rounds]


def test_a_retry_re_attaches_to_the_rounds_already_made(
    run_dag: Callable[..., Any], xai_conn: Callable[..., str], emulator: Any, tmp_path: Path
) -> None:
    ids = write_input(tmp_path / "in.jsonl")
    # The first try makes round 1 and waits for it, then meets a transient error exporting (no
    # retries inside the client), and Airflow's retry takes over.
    xai_conn(max_retries=0)
    decide = emulator.faults.decide
    failed_once: list[int] = []

    def fail_the_export(route: str) -> FaultDecision | None:
        if route == "list_results" and emulator.calls("list_results") == 2 and not failed_once:
            failed_once.append(1)
            return FaultDecision(status=503)
        return decide(route)

    emulator.faults.decide = fail_the_export
    source = dag_source(
        "resubmit_retry", tmp_path, input=f"source={str(tmp_path / 'in.jsonl')!r}",
        options="resubmit=ResubmitPolicy(rounds=1)", retries=1,
    )  # fmt: skip

    run = run_dag(source, "resubmit_retry")

    assert run.state == "success", states(run)
    assert failed_once
    assert {ti.task_id: ti.try_number for ti in run.get_task_instances()}["run"] == 2
    # Two batches in all: the retry found round 0 and round 1 again rather than creating them.
    assert emulator.calls("create_batch") == 2 and len(batches(emulator)) == 2
    second = batches(emulator)[1]
    assert sorted(request_ids(emulator, second["batch_id"])) == sorted(ids[i] for i in TRANSIENT)
    manifest = json.loads((tmp_path / "results" / "manifest.json").read_text())
    assert (manifest["succeeded"], manifest["failed"], manifest["recovered"]) == (7, 2, 3)


TIMEOUT_DAG = """
import datetime, pathlib
import pendulum
from airflow.sdk import DAG
from airflow_provider_xai_batch.operators.one_task import ResubmitPolicy, XAIBatchOperator


class Recording(XAIBatchOperator):
    # Failure callbacks get the exception only on newer Airflow; this works on every version.
    def execute(self, context):
        try:
            return super().execute(context)
        except Exception as error:
            pathlib.Path({error_file!r}).write_text(type(error).__name__)
            raise


with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1),
         default_args={{"retries": 1, "retry_delay": datetime.timedelta(0)}}) as dag:
    Recording(task_id="run", name="bounded", source={source!r}, poll_interval=10, timeout=100,
              resubmit=ResubmitPolicy(rounds=2))
"""


def test_the_timeout_bounds_the_whole_task_with_its_rounds(
    run_dag: Callable[..., Any], xai_conn: Callable[..., str], emulator: Any, manual_clock: Any,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from airflow_provider_xai_batch.operators import one_task

    # One clock for the service and the task; the task's pauses move it instead of sleeping.
    monkeypatch.setattr(one_task, "wall_clock", manual_clock.now)
    monkeypatch.setattr(one_task, "pause", manual_clock.advance)
    # Round 0 (9 requests) takes 90 s, round 1 (3 requests) 30 s more: past the 100 s the task has,
    # though each round alone would fit in it.
    emulator.config.update({"processing_rate": 0.1})
    write_input(tmp_path / "in.jsonl")
    error_file = tmp_path / "error.txt"
    source = TIMEOUT_DAG.format(
        dag_id="resubmit_timeout", source=str(tmp_path / "in.jsonl"), error_file=str(error_file)
    )

    run = run_dag(source, "resubmit_timeout")

    assert run.state == "failed", states(run)
    assert error_file.read_text() == "XAIBatchWaitTimeout"
    assert {ti.task_id: ti.try_number for ti in run.get_task_instances()}["run"] == 1  # no retry
    first, second = batches(emulator)
    assert second["name"].startswith("bounded-round-1-")
    assert second["state"]["num_pending"] > 0  # the follow-up round was still running


@pytest.mark.parametrize(
    ("old", "policy_rounds", "resends"),
    [
        ({"resubmit_failed": 2}, 2, "Internal error while processing the request"),
        ({"resubmit_failed": 1, "resubmit_if": lambda error: error == "odd"}, 1, "odd"),
    ],
)
def test_the_old_keywords_still_work_with_a_deprecation_warning(
    old: dict[str, Any], policy_rounds: int, resends: str
) -> None:
    from airflow.exceptions import AirflowProviderDeprecationWarning

    with pytest.warns(AirflowProviderDeprecationWarning, match="resubmit=ResubmitPolicy"):
        op = XAIBatchOperator(task_id="run", name="n", requests=[], **old)
    assert op.resubmit.rounds == policy_rounds and op.resubmit.retry_if(resends)


def test_the_new_and_the_old_keywords_do_not_mix() -> None:
    with pytest.raises(ValueError, match="alone"):
        XAIBatchOperator(
            task_id="run", name="n", requests=[], resubmit=ResubmitPolicy(rounds=1), resubmit_failed=1
        )
    with pytest.raises(ValueError, match="wait_for_completion"):
        XAIBatchOperator(
            task_id="run", name="n", requests=[], resubmit=ResubmitPolicy(rounds=1), wait_for_completion=False
        )


def test_the_one_task_operator_still_imports_from_its_earlier_home_with_a_warning() -> None:
    from airflow.exceptions import AirflowProviderDeprecationWarning

    from airflow_provider_xai_batch.operators import batch

    with pytest.warns(AirflowProviderDeprecationWarning, match="operators.one_task"):
        moved = batch.XAIBatchOperator
    assert moved is XAIBatchOperator
    with pytest.raises(AttributeError):
        _ = batch.NoSuchOperator
