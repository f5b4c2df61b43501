"""The pure parts of the task links and the batches page: figures, access, records, HTML."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from airflow_provider_xai_batch.client import Batch
from airflow_provider_xai_batch.links import batch_id_from_link, batch_page_path, file_page_path
from airflow_provider_xai_batch.plugins import access, records, render
from airflow_provider_xai_batch.plugins.batches import pages_supported
from airflow_provider_xai_batch.waiting.events import batch_event
from airflow_provider_xai_batch.waiting.progress import (
    ProgressLog,
    RateMemory,
    batch_figures,
    cost_so_far_usd,
    format_cost,
    progress_line,
)


def batch(done: int, total: int = 100, *, ticks: int | None = None, cancelled: bool = False) -> Batch:
    payload: dict[str, object] = {
        "batch_id": "batch_1",
        "name": "nightly-3f9a",
        "state": {"num_requests": total, "num_pending": total - done, "num_success": done},
    }
    if ticks is not None:
        payload["cost_breakdown"] = {"total_cost_in_usd_ticks": ticks}
    if cancelled:
        payload["cancel_time"] = "2026-01-01"
    return Batch.model_validate(payload)


# -- figures -------------------------------------------------------------------------------------
def test_the_figures_give_done_percent_rate_time_left_and_cost() -> None:
    figures = batch_figures(batch(40, ticks=42_000_000_000), rate=2.0)
    assert (figures.done, figures.total, figures.percent, figures.pending) == (40, 100, 40.0, 60)
    assert (figures.rate, figures.seconds_left, figures.cost_usd) == (2.0, 30.0, 4.2)


def test_cost_is_unknown_rather_than_zero_when_the_service_does_not_report_it() -> None:
    assert cost_so_far_usd(batch(1)) is None
    assert cost_so_far_usd(batch(1, ticks=0)) == 0.0
    broken = Batch.model_validate({"batch_id": "b", "cost_breakdown": {"total_cost_in_usd_ticks": "many"}})
    assert cost_so_far_usd(broken) is None


def test_the_progress_line_adds_the_cost_so_far() -> None:
    line = progress_line(batch(50, ticks=12_345_000_000), rate=5.0)
    assert line == (
        "Batch batch_1 is processing: 50/100 done (50.0%), 5.0 requests/s, about 10s left, $1.23 so far "
        "(50 succeeded, 0 failed, 0 cancelled)"
    )
    assert format_cost(0.0000004) == "< $0.0001"


def test_the_first_line_of_a_wait_says_where_the_batch_is_not_that_the_rate_is_unknown() -> None:
    first = ProgressLog(interval=60).line(batch(10), now=0)
    assert first == "Batch batch_1 is processing: 10/100 done (10.0%) (10 succeeded, 0 failed, 0 cancelled)"


def test_a_finished_batch_has_no_time_left() -> None:
    assert batch_figures(batch(100), rate=3.0).seconds_left is None
    assert batch_figures(batch(10, cancelled=True), rate=3.0).status == "cancelled"


def test_events_carry_the_same_figures() -> None:
    event = batch_event("success", "batch_1", batch(100, ticks=10), "done")
    assert event["progress"] == batch_figures(batch(100, ticks=10)).to_dict()
    assert batch_event("error", "batch_1", None, "gone")["progress"] is None


def test_the_page_measures_a_rate_from_its_first_sighting_and_forgets_the_oldest() -> None:
    memory = RateMemory(size=2)
    assert memory.rate(batch(10), now=100.0) is None
    assert memory.rate(batch(30), now=110.0) == 2.0
    for other in ("b2", "b3"):
        memory.rate(Batch(batch_id=other), now=120.0)
    assert memory.rate(batch(50), now=130.0) is None  # forgotten: a first sighting again


# -- links ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("batch_id", ["batch_1", "batch_a/b?c#d", "batch_ünïcode"])
def test_a_link_names_its_batch_whatever_the_id_holds(batch_id: str) -> None:
    assert batch_id_from_link("http://airflow:8080" + batch_page_path(batch_id, "xai_prod")) == batch_id


def test_a_file_link_names_no_batch() -> None:
    assert batch_id_from_link(file_page_path("file_1", "xai_default")) is None


# -- access --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("permissions", "sees", "cancels"),
    [
        (access.Permissions("d"), False, False),
        (access.Permissions("d", can_read_dag=True), True, False),
        (access.Permissions("d", can_read_dag=True, can_edit_dag=True), True, True),
        (access.Permissions(None, can_read_dag=True, can_edit_dag=True), False, False),
        (access.Permissions(None, is_admin=True), True, True),
    ],
)
def test_the_dag_that_made_a_batch_decides_who_sees_and_cancels_it(
    permissions: access.Permissions, sees: bool, cancels: bool
) -> None:
    assert (access.may_see(permissions), access.may_cancel(permissions)) == (sees, cancels)


def test_a_cancel_token_belongs_to_one_session_and_one_server() -> None:
    token = access.csrf_token(b"secret", "jwt-of-alice")
    assert access.csrf_ok(b"secret", "jwt-of-alice", token)
    assert not access.csrf_ok(b"secret", "jwt-of-mallory", token)
    assert not access.csrf_ok(b"another-secret", "jwt-of-alice", token)
    assert not access.csrf_ok(b"secret", None, token)
    assert not access.csrf_ok(b"secret", "jwt-of-alice", None)


@pytest.mark.parametrize(
    ("origin", "referer", "allowed"),
    [
        ("http://127.0.0.1:8080", None, True),
        ("HTTP://127.0.0.1:8080", None, True),
        ("http://127.0.0.1:9999", None, False),
        ("https://evil.example", "http://127.0.0.1:8080/xai-batch/", False),
        ("null", "http://127.0.0.1:8080/xai-batch/", True),
        (None, "http://127.0.0.1:8080/xai-batch/batches/b", True),
        (None, "http://127.0.0.1.evil.example/", False),
        (None, None, False),
    ],
)
def test_a_form_post_must_come_from_this_server(
    origin: str | None, referer: str | None, allowed: bool
) -> None:
    assert access.same_origin(origin, referer, ["http://127.0.0.1:8080"]) is allowed


# -- records -------------------------------------------------------------------------------------
def test_the_first_task_to_record_a_batch_made_it() -> None:
    link = batch_page_path("batch_1", "xai_default")
    rows = [
        ("nightly", "r1", "wait", -1, f'"http://a{link}"', datetime(2026, 1, 1, 0, 5)),
        ("nightly", "r1", "create", -1, f'"{link}"', datetime(2026, 1, 1, 0, 1)),
        ("other", "r9", "odd", -1, '"not a link"', datetime(2026, 1, 1)),
        ("other", "r9", "up", 3, f'"{file_page_path("f", "xai_default")}"', datetime(2026, 1, 1)),
    ]
    found = records.first_recorders(rows)
    assert set(found) == {"batch_1"}
    assert found["batch_1"].label == "nightly / r1 / create"


def test_the_export_is_found_among_return_values() -> None:
    manifest = {
        "batch_id": "batch_1",
        "files": {"succeeded": "s3://b/out/run/succeeded.jsonl"},
        "succeeded": 3,
    }
    assert records.export_of("batch_1", ["batch_1", {"batch_id": "other", "files": {"a": "x/y"}}]) is None
    found = records.export_of("batch_1", [{"batch_id": "batch_1"}, manifest])
    assert found is not None
    assert (found["folder"], found["manifest_uri"]) == ("s3://b/out/run", "s3://b/out/run/manifest.json")


# -- HTML ----------------------------------------------------------------------------------------
def view(name: str) -> render.BatchView:
    return render.BatchView(
        figures=batch_figures(batch(25, ticks=5_000_000_000), rate=1.0),
        name=name,
        age_seconds=90.0,
        made_by="nightly / <run> / create",
        page_url="/xai-batch/batches/batch_1?conn_id=xai_default",
        run_url="/dags/nightly/runs/r/tasks/create",
    )


def test_the_list_shows_the_figures_and_escapes_what_the_service_sent() -> None:
    html = render.list_page(
        [view("<script>alert(1)</script>")],
        conn_id="xai_default",
        connections=["xai_default", "xai_prod"],
        page=1,
        has_next=True,
        base="/xai-batch",
    )
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert "25/100 (25.0%)" in html and "about 1m 15s" in html and "$0.50" in html and "1m 30s" in html
    assert "nightly / &lt;run&gt; / create" in html
    assert "older →" in html and "← newer" not in html


def test_the_cancel_button_only_for_who_may_cancel_a_running_batch() -> None:
    common = {"conn_id": "xai_default", "base": "/xai-batch", "export": None}
    may = render.batch_page(view("b"), can_cancel=True, csrf="tok", **common)  # type: ignore[arg-type]
    may_not = render.batch_page(view("b"), can_cancel=False, csrf="tok", **common)  # type: ignore[arg-type]
    assert 'name="csrf_token" value="tok"' in may and "Cancel batch" in may
    assert "Cancel batch" not in may_not and "You may not cancel" in may_not


def test_pages_need_airflow_3_1() -> None:
    assert [pages_supported(v) for v in ("3.0.6", "3.1.0", "3.3.2", "4.0.0")] == [False, True, True, True]


@pytest.mark.skipif(not pages_supported(), reason="the pages need Airflow 3.1+")
def test_an_age_from_a_date_only_creation_time_prefers_the_creating_tasks_record() -> None:
    from airflow_provider_xai_batch.plugins.app import _age

    now = datetime(2026, 1, 2, 12, 0, tzinfo=timezone.utc)
    dated = Batch.model_validate({"batch_id": "b", "create_time": "2026-01-02"})
    made = records.MadeBy("d", "r", "create", -1, datetime(2026, 1, 2, 11, 59, tzinfo=timezone.utc))
    assert _age(dated, made, now) == 60.0
    assert _age(dated, None, now) == 12 * 3600.0
