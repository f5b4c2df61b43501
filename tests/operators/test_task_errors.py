"""What a task does with each kind of error: fail at once when no retry can help, else retry.

Runs real DAGs with ``dag.test()`` (which honours ``retries``) against the emulator, plus the
translation table itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_xai_batch.client import errors as client_errors
from airflow_provider_xai_batch.exceptions import (
    XAIBatchAuthenticationError,
    XAIBatchConflictError,
    XAIBatchInputError,
    XAIBatchInvalidRequestError,
    XAIBatchNotFoundError,
    XAIBatchPermissionDeniedError,
    XAIBatchTaskError,
    XAIBatchTransientError,
    task_error_for,
)
from airflow_provider_xai_batch.task_hook import task_hook

TRANSLATIONS: list[tuple[client_errors.XAIError, type[XAIBatchTaskError], bool]] = [
    (client_errors.XAIInputError("no body", source="in.jsonl", position="line 3"), XAIBatchInputError, True),
    (client_errors.XAIAuthenticationError(401, None, "missing key"), XAIBatchAuthenticationError, True),
    (
        client_errors.XAIInvalidRequestError(400, None, "model not supported"),
        XAIBatchInvalidRequestError,
        True,
    ),
    (
        client_errors.XAIPermissionDeniedError(403, None, "batch cancelled"),
        XAIBatchPermissionDeniedError,
        True,
    ),
    (client_errors.XAINotFoundError(404, None, "batch not found"), XAIBatchNotFoundError, True),
    (client_errors.XAIConflictError(412, None, "content differs"), XAIBatchConflictError, True),
    (client_errors.XAIRateLimitError(429, None, "slow down"), XAIBatchTransientError, False),
    (client_errors.XAIServerError(503, None, "unavailable"), XAIBatchTransientError, False),
    (client_errors.XAIConnectionError("connection refused"), XAIBatchTransientError, False),
    (client_errors.XAIError("something else"), XAIBatchTaskError, False),
]


@pytest.mark.parametrize(
    ("error", "expected", "permanent"), TRANSLATIONS, ids=[type(row[0]).__name__ for row in TRANSLATIONS]
)
def test_a_client_error_leaves_the_task_as_its_task_error(
    error: client_errors.XAIError, expected: type[XAIBatchTaskError], permanent: bool
) -> None:
    with pytest.raises(XAIBatchTaskError) as raised, task_hook("xai_default"):
        raise error

    assert type(raised.value) is expected
    assert str(raised.value) == str(error)
    assert raised.value.__cause__ is error
    assert isinstance(raised.value, AirflowFailException) is permanent
    assert type(task_error_for(error)) is expected


def test_an_input_error_stays_an_input_error() -> None:
    error = task_error_for(client_errors.XAIInputError("no body", source="in.jsonl", position="line 3"))
    assert isinstance(error, client_errors.XAIInputError)
    assert (error.source, error.position, error.reason) == ("in.jsonl", "line 3", "no body")


ONE_TASK_DAG = """
import datetime
import pendulum
from airflow.sdk import DAG
from airflow_provider_xai_batch.operators.one_task import XAIBatchOperator

with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1),
         default_args={{"retries": 3, "retry_delay": datetime.timedelta(0)}}) as dag:
    XAIBatchOperator(task_id="run_batch", name="errors", requests={requests!r}, poll_interval=0.05)
"""


def good_requests(count: int = 2) -> list[dict[str, Any]]:
    return [
        {
            "custom_id": f"q{index}",
            "body": {"model": "grok-4.3", "messages": [{"role": "user", "content": "hi"}]},
        }
        for index in range(count)
    ]


def run_batch_try(run: Any) -> tuple[str, int]:
    [ti] = [ti for ti in run.get_task_instances() if ti.task_id == "run_batch"]
    return str(ti.state), int(ti.try_number)


def test_bad_input_fails_on_the_first_try_despite_retries(
    run_dag: Callable[..., Any], xai_conn: Callable[..., str], emulator: Any
) -> None:
    requests = [*good_requests(), {"custom_id": "no-body", "url": "/v1/chat/completions"}]

    run = run_dag(ONE_TASK_DAG.format(dag_id="bad_input_once", requests=requests), "bad_input_once")

    assert run_batch_try(run) == ("failed", 1)
    assert emulator.calls("add_requests") == 0


def test_a_wrong_key_fails_on_the_first_try_despite_retries(
    run_dag: Callable[..., Any], emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_XAI_DEFAULT",
        f'{{"conn_type": "xai", "password": "xai-wrong-key-000", "host": "{emulator.url}"}}',
    )

    run = run_dag(ONE_TASK_DAG.format(dag_id="wrong_key_once", requests=good_requests()), "wrong_key_once")

    assert run_batch_try(run) == ("failed", 1)
    assert emulator.calls("create_batch") == 1  # one try, and no retry inside the client either


def test_a_refused_request_fails_on_the_first_try_despite_retries(
    run_dag: Callable[..., Any], xai_conn: Callable[..., str], emulator: Any
) -> None:
    # A model the service takes no batch work for: every call holding it is answered 400.
    requests = good_requests()
    requests[1]["body"]["model"] = "grok-2-mini"

    run = run_dag(ONE_TASK_DAG.format(dag_id="refused_once", requests=requests), "refused_once")

    assert run_batch_try(run) == ("failed", 1)
    assert emulator.calls("create_batch") == 1


def test_a_503_storm_still_goes_to_airflows_retries(
    run_dag: Callable[..., Any], xai_conn: Callable[..., str], emulator: Any
) -> None:
    xai_conn(max_retries=0)  # every 503 reaches the task
    emulator.faults.inject("create_batch", status=503, count=2)

    run = run_dag(ONE_TASK_DAG.format(dag_id="storm_retried", requests=good_requests(3)), "storm_retried")

    assert run_batch_try(run) == ("success", 3)
    assert emulator.answers(503, "create_batch") == 2
    [batch] = emulator.service.list_batches()["batches"]
    assert batch["state"]["num_requests"] == 3
