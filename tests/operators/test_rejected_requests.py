"""A request the service rejects fails the add task with an error naming it where the user wrote it.

The emulator, like the service, answers a whole add call 400 when one request asks for a model it
does not batch; the task's error then names that request's file and line (or list item), its id
and the service's message.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from support.batch_requests import short
from support.emulator import held_request_ids
from support.jsonl import write_jsonl

from airflow_provider_xai_batch.client.inputs import generated_request_id
from airflow_provider_xai_batch.exceptions import XAIBatchInvalidRequestError
from airflow_provider_xai_batch.hooks.xai import XAIBatchHook
from airflow_provider_xai_batch.operators.batch import XAIAddBatchRequestsOperator
from airflow_provider_xai_batch.sources import xcom_source_label

UNBATCHED_MODEL = "grok-2-mini"
REFUSAL = f"Model {UNBATCHED_MODEL} is not supported for batch processing."


def refused(row: dict[str, Any]) -> dict[str, Any]:
    row["body"]["model"] = UNBATCHED_MODEL
    return row


def run_add_task(**inputs: Any) -> dict[str, Any]:
    operator = XAIAddBatchRequestsOperator(task_id="add", **inputs)
    ti = SimpleNamespace(dag_id="nightly", task_id="add", run_id="manual__1", map_index=-1, try_number=1)
    result: dict[str, Any] = operator.execute({"ti": ti})  # type: ignore[typeddict-item]
    return result


@pytest.fixture
def batch_id(xai_conn: Callable[..., str]) -> str:
    with closing(XAIBatchHook()) as hook:
        return hook.create_batch("rejections").batch_id


def test_an_unbatched_model_on_line_700_names_the_file_line_id_and_the_services_reason(
    tmp_path: Path, batch_id: str, emulator: Any
) -> None:
    rows = [short(f"question {line}") for line in range(1, 1001)]
    rows[699] = refused(short("question 700", "the-odd-one"))
    path = write_jsonl(tmp_path / "prompts.jsonl", rows)
    uri = f"file://{path}"

    with pytest.raises(XAIBatchInvalidRequestError) as failed:
        run_add_task(batch_id=batch_id, source=str(path))

    assert str(failed.value) == (
        f"xAI API error 400 ({emulator.url}, connection 'xai_default'): {uri}, line 700, request 'the-odd-one': {REFUSAL}"
    )
    # Every request before the refused one stays added (sending the file again adds nothing twice);
    # none after it is sent.
    assert held_request_ids(emulator, batch_id) == [
        generated_request_id(uri, f"line {line}") for line in range(1, 700)
    ]


def test_a_refused_request_without_an_id_is_named_by_its_generated_id(
    tmp_path: Path, batch_id: str, emulator: Any
) -> None:
    path = write_jsonl(tmp_path / "prompts.jsonl", [short("a"), short("b"), refused(short("c"))])
    uri = f"file://{path}"

    with pytest.raises(XAIBatchInvalidRequestError) as failed:
        run_add_task(batch_id=batch_id, source=f"{tmp_path}/*.jsonl")

    request_id = generated_request_id(uri, "line 3")
    assert str(failed.value).endswith(f": {uri}, line 3, request {request_id!r}: {REFUSAL}")


def test_a_refused_xcom_item_is_named_by_its_index_counting_identical_repeats(
    batch_id: str, emulator: Any
) -> None:
    # The repeat of item 0 is sent once, yet the refused request stays item 3 of the user's list.
    requests = [short("a", "q-a"), short("a", "q-a"), short("b", "q-b"), refused(short("c", "q-c"))]

    with pytest.raises(XAIBatchInvalidRequestError) as failed:
        run_add_task(batch_id=batch_id, requests=requests)

    label = xcom_source_label({"ti": SimpleNamespace(task_id="add", map_index=-1)})
    assert str(failed.value).endswith(f": {label}, item 3, request 'q-c': {REFUSAL}")
    assert held_request_ids(emulator, batch_id) == ["q-a", "q-b"]
