"""Input is checked completely, against the limits in force, before anything reaches the account."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pytest
from request_files import all_batches, short

from airflow_provider_xai_batch.exceptions import XAIBatchInputError
from airflow_provider_xai_batch.hooks.xai import XAIBatchHook
from airflow_provider_xai_batch.operators.batch import XAIAddBatchRequestsOperator
from airflow_provider_xai_batch.operators.one_task import XAIBatchOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


def context(task_id: str = "run_batch") -> Context:
    # A stub task instance: what the operator reads of it, nothing more.
    ti = SimpleNamespace(dag_id="d", task_id=task_id, run_id="r1", map_index=-1, try_number=1)
    return cast("Context", {"ti": ti})


def test_bad_input_creates_no_batch(xai_conn: Callable[..., str], emulator: Any) -> None:
    requests = [short("one", "a"), short("two", "b"), {"custom_id": "c", "url": "/v1/chat/completions"}]
    operator = XAIBatchOperator(task_id="run_batch", name="n", requests=requests)

    with pytest.raises(XAIBatchInputError, match=r"^run_batch\.requests, item 2: the request has no body"):
        operator.execute(context())

    assert emulator.calls("create_batch") == 0
    assert all_batches(emulator) == []


def test_a_request_over_the_connections_add_call_cap_fails_before_anything_is_sent(
    xai_conn: Callable[..., str], emulator: Any
) -> None:
    # The default caps are 25 MB; this connection allows add calls of 2,000 bytes only.
    xai_conn(max_add_call_bytes=2000)
    requests = [short("small", "a"), short("small too", "b"), short("x" * 3000, "big")]

    with pytest.raises(
        XAIBatchInputError, match=r"item 2: request 'big' is [\d,]+ bytes, over the 1,979-byte"
    ):
        XAIBatchOperator(task_id="run_batch", name="n", requests=requests).execute(context())
    assert emulator.calls("create_batch") == 0

    with closing(XAIBatchHook()) as hook:
        batch_id = hook.create_batch("target").batch_id
    with pytest.raises(XAIBatchInputError, match="over the 1,979-byte limit"):
        XAIAddBatchRequestsOperator(task_id="add", batch_id=batch_id, requests=requests).execute(
            context("add")
        )
    assert emulator.calls("add_requests") == 0
    assert emulator.service.get_batch(batch_id)["state"]["num_requests"] == 0


def task_log(capfd: pytest.CaptureFixture[str]) -> str:
    """What the task logged (Airflow renders task logs to the process's output)."""
    out, err = capfd.readouterr()
    return out + err


def test_empty_input_ends_at_once_with_an_empty_manifest(
    xai_conn: Callable[..., str], emulator: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "results"
    operator = XAIBatchOperator(task_id="run_batch", name="nightly", requests=[], output_path=str(output))

    manifest = operator.execute(context())

    assert (manifest["batch_id"], manifest["total"], manifest["succeeded"], manifest["failed"]) == (
        None,
        0,
        0,
        0,
    )
    assert json.loads((output / "manifest.json").read_text()) == manifest
    assert (output / "succeeded.jsonl").read_bytes() == b"" == (output / "failed.jsonl").read_bytes()
    assert emulator.calls("create_batch") == 0 and emulator.calls() == 0
    assert "The input holds no requests: no batch created" in task_log(capfd)


def test_empty_input_without_output_returns_nothing_and_creates_no_batch(
    xai_conn: Callable[..., str], emulator: Any
) -> None:
    assert XAIBatchOperator(task_id="run_batch", name="n", requests=[]).execute(context()) is None
    assert emulator.calls("create_batch") == 0


def summary_lines(capfd: pytest.CaptureFixture[str]) -> list[str]:
    """The distinct add-step summaries printed since the last look, each from ``batch ...`` on.

    Once a dag.test() ran in the process, Airflow 3.0 prints each task log line a second time, as
    the repr of its arguments.
    """
    found = re.finditer(r"batch \S+: sent .*? add calls .*?already present", task_log(capfd))
    return sorted({match.group(0) for match in found})


def test_the_add_step_ends_with_a_summary_line(
    xai_conn: Callable[..., str], emulator: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    xai_conn(max_requests_per_call=2)
    requests = [short(f"question {index}", f"q{index}") for index in range(5)]
    operator = XAIBatchOperator(task_id="run_batch", name="n", requests=requests, wait_for_completion=False)

    operator.execute(context())

    [line] = summary_lines(capfd)
    assert f"batch {operator.batch_id}: sent 5 requests in 3 add calls in " in line
    assert "requests/s): 5 new, 0 already present" in line

    retry = context()
    retry["ti"].try_number = 2  # re-attaches to the batch by its name and sends everything again
    XAIBatchOperator(task_id="run_batch", name="n", requests=requests, wait_for_completion=False).execute(
        retry
    )

    [line] = summary_lines(capfd)
    assert "requests/s): 0 new, 5 already present" in line
