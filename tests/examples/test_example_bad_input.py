"""Bad input in an example pipeline fails before any batch exists, naming the file and the line.

Each example runs with ``dag.test()`` against the emulator, as a manual trigger (no logical
date); the emulator's own state shows whether a batch was made.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from support.dags import run_dag_file, task_states
from support.emulator import all_batches
from support.jsonl import write_jsonl

from airflow_provider_xai_batch.emulator import EmulatorServer

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"
CHAT = {"model": "grok-4.3", "messages": [{"role": "user", "content": "Say hi"}]}


# Appended to an example: every task writes the error it failed with beside the DAG file, the one
# channel every supported Airflow gives a dag.test() run (3.0 prints no task tracebacks there).
RECORD_ERRORS = """

def _record_error(context):
    with open(__file__ + ".errors", "a") as errors:
        errors.write(f"{context['ti'].task_id}: {context.get('exception')}\\n")


for _task in dag.tasks:
    _task.on_failure_callback = [_record_error]
"""


def run_with_errors_recorded(source: str, name: str, dags_folder: Path) -> Any:
    return run_dag_file(source + RECORD_ERRORS, name, dags_folder, logical_date=None)


def run_example(name: str, dags_folder: Path) -> Any:
    return run_with_errors_recorded((EXAMPLES / f"{name}.py").read_text(), name, dags_folder)


def task_errors(dags_folder: Path, name: str, capfd: pytest.CaptureFixture[str]) -> str:
    """What the example's failed tasks raised, one ``task: error`` line each, then the printed output.

    Airflow 3.0 hands the failure callback no exception in dag.test(); it prints the traceback in a
    box instead, wrapped to the terminal, so that output follows with colours, box lines and all
    white space taken out (compare with :func:`squeezed`).
    """
    path = dags_folder / f"{name}.py.errors"
    recorded = path.read_text() if path.exists() else ""
    out, err = capfd.readouterr()
    return recorded + "\n" + squeezed(re.sub(r"\x1b\[[0-9;]*m", "", out + err))


def squeezed(text: str) -> str:
    """``text`` without white space or box-drawing characters."""
    return re.sub(r"[\s\u2500-\u257f]+", "", text)


def write_with_a_bad_line(path: Path, good: int, bad_at: int) -> None:
    """``good`` valid lines with a line that is not JSON at 1-based line ``bad_at``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"custom_id": f"{path.stem}-{i}", "body": CHAT}) for i in range(good)]
    lines.insert(bad_at - 1, '{"custom_id": "broken", "body": ')
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, xai_connection: str) -> Path:
    monkeypatch.setenv("XAI_BATCH_POLL_SECONDS", "0.2")
    monkeypatch.setenv("XAI_BATCH_EXAMPLE_ROOT", str(tmp_path / "examples"))
    for name in ("XAI_BATCH_INPUT", "XAI_BATCH_SHARDS", "XAI_BATCH_OUTPUT"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "examples"


def test_nightly_with_a_bad_line_creates_no_batch(
    settings: Path, dags_folder: Path, emulator: EmulatorServer, capfd: pytest.CaptureFixture[str]
) -> None:
    write_jsonl(settings / "input" / "part-0.jsonl", [{"custom_id": f"a{i}", "body": CHAT} for i in range(3)])
    write_with_a_bad_line(settings / "input" / "part-1.jsonl", good=4, bad_at=3)

    run = run_example("example_xai_batch_nightly", dags_folder)

    assert run.state == "failed"
    assert task_states(run)["create_batch"] == "failed"
    assert all_batches(emulator) == [] and emulator.calls("create_batch") == 0
    errors = task_errors(dags_folder, "example_xai_batch_nightly", capfd)
    assert squeezed("part-1.jsonl, line 3: ") in squeezed(errors), errors[-3000:]


def test_fan_in_with_one_bad_shard_creates_no_batch(
    settings: Path, dags_folder: Path, emulator: EmulatorServer, capfd: pytest.CaptureFixture[str]
) -> None:
    for shard in range(3):
        write_jsonl(
            settings / "shards" / f"shard-{shard}.jsonl",
            [{"body": CHAT | {"seed": shard * 10 + i}} for i in range(4)],
        )
    write_with_a_bad_line(settings / "shards" / "shard-3.jsonl", good=2, bad_at=2)

    run = run_example("example_xai_batch_fan_in", dags_folder)

    assert run.state == "failed"
    states = task_states(run)
    assert states["create_batch"] == "failed"
    assert states["add_shard"] != "success"  # no shard was added anywhere
    assert all_batches(emulator) == [] and emulator.calls("add_requests") == 0
    errors = task_errors(dags_folder, "example_xai_batch_fan_in", capfd)
    assert squeezed("shard-3.jsonl, line 2: ") in squeezed(errors), errors[-3000:]


def test_fan_in_with_good_shards_still_fills_one_batch(
    settings: Path, dags_folder: Path, emulator: EmulatorServer
) -> None:
    for shard in range(3):
        write_jsonl(
            settings / "shards" / f"shard-{shard}.jsonl",
            [{"body": CHAT | {"seed": shard * 10 + i}} for i in range(4)],
        )

    run = run_example("example_xai_batch_fan_in", dags_folder)

    assert run.state == "success"
    [batch] = all_batches(emulator)
    assert batch["state"]["num_requests"] == 12
    # The default output folder sits under the examples' root, named after the run in a safe form.
    [manifest] = (settings / "output" / "example_xai_batch_fan_in").glob("*/manifest.json")
    assert ":" not in manifest.parent.name and "+" not in manifest.parent.name
    assert json.loads(manifest.read_text())["succeeded"] == 12


def test_taskflow_with_a_bad_request_creates_no_batch(
    settings: Path, dags_folder: Path, emulator: EmulatorServer, capfd: pytest.CaptureFixture[str]
) -> None:
    # The example builds its prompts in a task; here every one names an endpoint that does not exist.
    source = (EXAMPLES / "example_xai_batch_taskflow.py").read_text()
    broken = source.replace(
        '"custom_id": f"review-{index:03d}",', '"custom_id": f"review-{index:03d}", "url": "/v1/nope",'
    )
    assert broken != source
    run = run_with_errors_recorded(broken, "example_xai_batch_taskflow", dags_folder)

    assert run.state == "failed"
    assert all_batches(emulator) == [] and emulator.calls("create_batch") == 0
    errors = task_errors(dags_folder, "example_xai_batch_taskflow", capfd)
    assert squeezed("item 0") in squeezed(errors), errors[-3000:]


def test_the_documented_pattern_validates_a_request_list_before_creating(
    xai_connection: str, emulator: EmulatorServer
) -> None:
    from types import SimpleNamespace

    from airflow_provider_xai_batch.exceptions import XAIBatchInputError
    from airflow_provider_xai_batch.operators.batch import XAICreateBatchOperator

    ti = SimpleNamespace(dag_id="d", task_id="create", run_id="r1", map_index=-1, try_number=1)
    requests = [{"custom_id": "a", "body": CHAT}, {"custom_id": "b", "url": "/v1/chat/completions"}]
    create = XAICreateBatchOperator(task_id="create", name="n", requests=requests)

    with pytest.raises(XAIBatchInputError, match=r"^create\.requests, item 1: the request has no body"):
        create.execute({"ti": ti})  # type: ignore[typeddict-item]
    assert emulator.calls("create_batch") == 0

    good = XAICreateBatchOperator(task_id="create", name="n", requests=requests[:1])
    assert good.execute({"ti": ti}).startswith("batch_")  # type: ignore[typeddict-item]
    assert emulator.calls("create_batch") == 1


def test_create_takes_one_input_to_validate_and_none_for_a_file_batch() -> None:
    from airflow_provider_xai_batch.operators.batch import XAICreateBatchOperator

    with pytest.raises(ValueError, match="at most one"):
        XAICreateBatchOperator(task_id="c", name="n", requests=[], source="file:///x/*.jsonl")
    with pytest.raises(ValueError, match="validated when it is uploaded"):
        XAICreateBatchOperator(task_id="c", name="n", input_file_id="file_1", source="file:///x/*.jsonl")
