"""The API key never leaves the Authorization header: not in logs, XCom, trigger rows, rendered
fields, exception text, nor anything else the service receives.

A canary key (unique per test) drives the example DAG end to end against the emulator; then the
whole metadata database, the task logs and everything printed are searched for it. Failing
variants (an unreachable host, a rejected key, a rejected request) check the error texts too.
"""

from __future__ import annotations

import json
import os
import re
import traceback
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from reliability_support import jsonl_request
from support.dags import run_dag_file, task_states
from support.jsonl import write_jsonl

from airflow_provider_xai_batch.client import XAIBatchClient, XAIError
from airflow_provider_xai_batch.emulator import EmulatorServer
from airflow_provider_xai_batch.emulator.process import free_port
from airflow_provider_xai_batch.hooks.xai import XAIBatchHook

EXAMPLE_DAG = Path(__file__).parents[2] / "example_dags" / "example_xai_batch_nightly.py"
DAG_ID = "example_xai_batch_nightly"


# Airflow 3.0's ``dag.test()`` runs tasks with an in-process stand-in for the supervisor that
# prints every message a task sends it at debug level, including the request to mask the
# connection's password (which Airflow itself sends on reading any connection). Real workers talk
# to the supervisor over a socket and never log message bodies; the line exists only under
# ``dag.test()``, and only that exact line is set aside here.
AIRFLOW_DAG_TEST_TRACE = re.compile(r"\[debug\s*\] Sending request\s+msg=MaskSecret\(value='")


def canary_key() -> str:
    return f"xai-canary-{uuid.uuid4()}"


def run_example(
    monkeypatch: pytest.MonkeyPatch, dags_folder: Path, tmp_path: Path, key: str, host: str, **extra: Any
) -> Any:
    inputs = tmp_path / "input"
    write_jsonl(inputs / "a.jsonl", [jsonl_request(f"s-{i}", f"prompt {i}") for i in range(20)])
    write_jsonl(inputs / "b.jsonl", [jsonl_request(None, f"no id {i}") for i in range(5)])
    connection = {"conn_type": "xai", "password": key, "host": host, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_XAI_DEFAULT", json.dumps(connection))
    monkeypatch.setenv("XAI_BATCH_INPUT", f"file://{inputs}/*.jsonl")
    monkeypatch.setenv("XAI_BATCH_OUTPUT", f"file://{tmp_path}/output/{{{{ ds }}}}")
    monkeypatch.setenv("XAI_BATCH_POLL_SECONDS", "0.5")
    return run_dag_file(EXAMPLE_DAG.read_text(), DAG_ID, dags_folder)


def metadata_rows() -> dict[str, list[str]]:
    """Every row of every table of the metadata database, as text, plus trigger kwargs decrypted."""
    from airflow import settings
    from airflow.models.trigger import Trigger
    from sqlalchemy import inspect, text

    session = settings.Session()  # type: ignore[misc]  # None until Airflow is configured
    try:
        tables: dict[str, list[str]] = {}
        for table in inspect(session.get_bind()).get_table_names():
            rows = session.execute(text(f'SELECT * FROM "{table}"')).fetchall()
            tables[table] = [repr(tuple(row)) for row in rows]
        tables["trigger (decrypted kwargs)"] = [repr(trigger.kwargs) for trigger in session.query(Trigger)]
        return tables
    finally:
        session.close()


def this_run_rows(run_id: str) -> dict[str, list[str]]:
    """The rows the run wrote where a key could slip in: XCom values, rendered fields, its trigger."""
    from airflow import settings
    from sqlalchemy import inspect, text

    session = settings.Session()  # type: ignore[misc]  # None until Airflow is configured
    try:
        if "xcom_v2" in inspect(session.get_bind()).get_table_names():
            # Airflow 3.4+ stores both per task attempt, keyed by the attempt's task_instance id.
            where = (
                "JOIN task_instance ON task_instance.id = {table}.task_instance_id "
                "WHERE task_instance.dag_id = :dag AND task_instance.run_id = :run"
            )
            xcom, rendered = "xcom_v2", "rtif_v2"
        else:
            where = "WHERE {table}.dag_id = :dag AND {table}.run_id = :run"
            xcom, rendered = "xcom", "rendered_task_instance_fields"
        query = {
            "xcom": f"SELECT {xcom}.value FROM {xcom} " + where.format(table=xcom),
            "rendered_task_instance_fields": (
                f"SELECT {rendered}.rendered_fields FROM {rendered} " + where.format(table=rendered)
            ),
            "trigger": (
                "SELECT trigger.kwargs FROM trigger JOIN task_instance ON task_instance.trigger_id = trigger.id "
                "WHERE task_instance.dag_id = :dag AND task_instance.run_id = :run"
            ),
        }
        return {
            table: [str(row[0]) for row in session.execute(text(sql), {"dag": DAG_ID, "run": run_id})]
            for table, sql in query.items()
        }
    finally:
        session.close()


def scrubbed_of_airflow_trace(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not AIRFLOW_DAG_TEST_TRACE.search(line))


def assert_key_nowhere(key: str, capfd: pytest.CaptureFixture[str]) -> dict[str, int]:
    """Search logs, printed output and the metadata database; return how much was searched."""
    out, err = capfd.readouterr()
    printed = [line for line in scrubbed_of_airflow_trace(out + err).splitlines() if key in line]
    assert not printed, "the key was printed:\n" + "\n".join(printed)
    home = Path(os.environ["AIRFLOW_HOME"])
    log_files = [path for path in (home / "logs").rglob("*") if path.is_file()]
    for path in log_files:
        assert key not in path.read_text(errors="replace"), f"the key is in the log {path}"
    tables = metadata_rows()
    for table, rows in tables.items():
        assert not any(key in row for row in rows), f"the key is in the {table} table"
    # Deleted rows linger in the database file; the key must not be there either.
    assert key.encode() not in (home / "airflow.db").read_bytes()
    return {"printed_chars": len(out) + len(err), "log_files": len(log_files), "tables": len(tables)}


def assert_error_text_clean(error: BaseException, key: str) -> str:
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    for form in (str(error), repr(error), text, repr(error.__dict__), repr(error.__reduce__())):
        assert key not in form, form
    return str(error)


def test_the_example_dag_leaves_the_key_nowhere(
    dags_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    key = canary_key()
    # 25 requests at 2 a second: still processing when the sensor first looks, however loaded the
    # machine, so the wait really goes through a trigger row.
    with EmulatorServer(api_key=key, processing_rate=2) as emulator:
        run: Any = run_example(monkeypatch, dags_folder, tmp_path, key, emulator.url)
        entries = emulator.request_log.entries()

    assert run.state == "success", task_states(run)
    rows = this_run_rows(run.run_id)
    # Each place was really written to, so finding nothing there means something: each of the four
    # tasks stored its return value and its xAI batch link.
    assert len(rows["xcom"]) == 8 and len(rows["rendered_task_instance_fields"]) == 4, rows
    assert len(rows["trigger"]) == 1 and "batch_id" in rows["trigger"][0], rows
    for table, values in rows.items():
        assert not any(key in value for value in values), table
    searched = assert_key_nowhere(key, capfd)
    assert searched["printed_chars"] > 1000

    # The service saw the key in the Authorization header of every call, and nowhere else.
    assert entries and all(entry.header("authorization") == f"Bearer {key}" for entry in entries)
    assert not any(key in entry.text() for entry in entries)
    assert {entry.route for entry in entries} >= {"create_batch", "add_requests", "get_batch", "list_results"}


def test_an_unreachable_host_fails_without_the_key(
    dags_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    key = canary_key()
    host = f"http://127.0.0.1:{free_port()}"
    run: Any = run_example(monkeypatch, dags_folder, tmp_path, key, host, max_retries=1, timeout=5)

    assert task_states(run)["create_batch"] == "failed"
    out, err = capfd.readouterr()
    assert "XAIConnectionError" in out + err  # the failure was reported ...
    assert key not in scrubbed_of_airflow_trace(out + err)  # ... without the key
    with closing(XAIBatchHook()) as hook, pytest.raises(XAIError) as info:
        hook.create_batch("direct")
    assert "ConnectError" in assert_error_text_clean(info.value, key)
    assert_key_nowhere(key, capfd)


def test_a_rejected_key_and_a_rejected_request_fail_without_the_key(
    dags_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    key = canary_key()
    with EmulatorServer(api_key=canary_key()) as emulator:
        run: Any = run_example(monkeypatch, dags_folder, tmp_path, key, emulator.url)
        assert task_states(run)["create_batch"] == "failed"
        out, err = capfd.readouterr()
        assert "Incorrect API key provided" in out + err
        assert key not in scrubbed_of_airflow_trace(out + err)
        with closing(XAIBatchHook()) as hook, pytest.raises(XAIError) as info:
            hook.get_batch("batch_1")
        assert "Incorrect API key provided" in assert_error_text_clean(info.value, key)
        entries = emulator.request_log.entries()

    with EmulatorServer(api_key=key) as emulator:
        monkeypatch.setenv(
            "AIRFLOW_CONN_XAI_DEFAULT",
            json.dumps({"conn_type": "xai", "password": key, "host": emulator.url}),
        )
        unsupported = {
            "custom_id": "m",
            "body": {"model": "grok-no-such-model", "messages": [{"role": "user", "content": "x"}]},
        }
        with closing(XAIBatchHook()) as hook, pytest.raises(XAIError) as info:
            hook.add_requests(hook.create_batch("rejected-model").batch_id, [unsupported])
        assert "not supported for batch processing" in assert_error_text_clean(info.value, key)
        entries += emulator.request_log.entries()

    assert entries and not any(key in entry.text() for entry in entries)
    assert_key_nowhere(key, capfd)


def test_a_service_that_echoes_the_key_back_does_not_leak_it(capfd: pytest.CaptureFixture[str]) -> None:
    """Proxies and gateways sometimes repeat the credential in an error; the client scrubs it."""
    key = canary_key()

    def echo(request: httpx.Request) -> httpx.Response:
        header = request.headers["authorization"]
        if request.url.path.endswith("/requests"):
            raise httpx.ConnectError(f"proxy refused {header}", request=request)
        return httpx.Response(400, json={"code": "bad", "error": f"Incorrect API key provided: {header}"})

    client = XAIBatchClient(
        key, base_url="https://api.x.ai", transport=httpx.MockTransport(echo), max_retries=0
    )
    assert key not in repr(client)
    with pytest.raises(XAIError) as info:
        client.get_batch("batch_1")
    assert "Incorrect API key provided: Bearer ***" in assert_error_text_clean(info.value, key)
    with pytest.raises(XAIError) as info:
        client.add_requests("batch_1", [jsonl_request("a", "x")])
    assert "proxy refused Bearer ***" in assert_error_text_clean(info.value, key)
    out, err = capfd.readouterr()
    assert key not in out + err
