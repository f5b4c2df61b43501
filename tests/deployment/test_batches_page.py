"""The task links and the batches page in a real deployment, through the REST API and in Chromium.

The folder's deployment (API server, scheduler, DAG processor and triggerer as processes) has the
simple auth manager's users ``admin`` and ``viewer``. Two runs of one DAG each make a batch that
the emulator holds: the first is released and exported, the second is cancelled by the admin from
the batch's page, and its sensor fails as cancelled.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from deployment_support import EMULATOR_KEY, HOLD_RATE, UI_DAG_ID, Deployment, newest_airflow_only
from support.headless_chromium import ChromiumPage, needs_chromium

from airflow_provider_xai_batch.links import LINK_NAME, PAGE_PREFIX, batch_page_path

pytestmark = [
    pytest.mark.airflow_processes,
    pytest.mark.slow,
    newest_airflow_only(),
    needs_chromium(),
]

# Screenshots for the README are copied here when this variable names a folder.
SCREENSHOT_FOLDER = os.environ.get("XAI_BATCH_SCREENSHOTS")


def ti_state(ui: Deployment, run_id: str, task_id: str) -> str | None:
    for ti in ui.airflow.api.task_instances(UI_DAG_ID, run_id):
        if ti["task_id"] == task_id:
            return ti["state"]
    return None


def links(ui: Deployment, run_id: str, task_id: str) -> dict[str, Any]:
    path = f"/api/v2/dags/{UI_DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/links"
    return dict(ui.airflow.api.get(path)["extra_links"])


def batch_of(ui: Deployment, run_id: str) -> str:
    path = f"/api/v2/dags/{UI_DAG_ID}/dagRuns/{run_id}/taskInstances/create/xcomEntries/return_value"
    return str(ui.airflow.api.get(path)["value"]).strip('"')


def listed(ui: Deployment, user: str) -> dict[str, dict[str, Any]]:
    with ui.client(user) as client:
        answer = client.get(f"{PAGE_PREFIX}/api/batches")
        answer.raise_for_status()
        return {row["batch_id"]: row for row in answer.json()["batches"]}


def keep(path: Path) -> None:
    if SCREENSHOT_FOLDER:
        shutil.copy(path, Path(SCREENSHOT_FOLDER) / path.name)


@pytest.mark.timeout(900)
def test_links_page_permissions_and_cancel(deployment: Deployment, tmp_path: Path) -> None:
    ui, airflow = deployment, deployment.airflow
    airflow.wait_for_dags({UI_DAG_ID})
    # The examples' test ran first and released its batches; these two must stay pending.
    ui.emulator.configure(processing_rate=HOLD_RATE)
    kept, cancelled = (airflow.api.trigger(UI_DAG_ID)["dag_run_id"] for _ in range(2))
    for run_id in (kept, cancelled):
        airflow.wait_for(
            f"{run_id}'s sensor to defer", lambda r=run_id: ti_state(ui, r, "wait") == "deferred", 300
        )
    kept_batch, cancelled_batch = batch_of(ui, kept), batch_of(ui, cancelled)

    # The button on a deferred sensor, through the REST API: the batch's page.
    link = links(ui, kept, "wait")[LINK_NAME]
    assert link.endswith(batch_page_path(kept_batch, "xai_default")), link

    # Anonymous callers get nothing, neither the page nor a cancel.
    with ui.client(None) as anonymous:
        assert anonymous.get(f"{PAGE_PREFIX}/").status_code in (401, 403)
        assert anonymous.get(f"{PAGE_PREFIX}/api/batches").status_code in (401, 403)
        refused = anonymous.post(
            f"{PAGE_PREFIX}/batches/{kept_batch}/cancel", data={"conn_id": "xai_default"}
        )
        assert refused.status_code in (401, 403)

    # Both users see the running batches with their progress and the task that made them.
    for user in ("admin", "viewer"):
        rows = listed(ui, user)
        row = rows[kept_batch]
        assert (row["status"], row["total"], row["done"], row["dag_id"]) == ("processing", 4, 0, UI_DAG_ID)
        assert row["made_by"] == f"{UI_DAG_ID} / {kept} / create"
        assert row["may_cancel"] is (user == "admin")
        assert cancelled_batch in rows

    # The viewer may not cancel: the server says no, whatever the page shows.
    with ui.client("viewer") as viewer:
        answer = viewer.post(
            f"{PAGE_PREFIX}/batches/{cancelled_batch}/cancel", data={"conn_id": "xai_default"}
        )
        assert answer.status_code == 403, answer.text
        assert "Cancel batch" not in viewer.get(f"{PAGE_PREFIX}/batches/{cancelled_batch}").text

    # The admin's session cookie alone cannot cancel from another site.
    with httpx.Client(
        base_url=airflow.base_url, cookies={"_token": ui.tokens["admin"]}, timeout=60
    ) as browser:
        forged = browser.post(
            f"{PAGE_PREFIX}/batches/{cancelled_batch}/cancel",
            data={"conn_id": "xai_default", "csrf_token": "guess"},
            headers={"Origin": "https://elsewhere.example"},
        )
        assert forged.status_code == 403
        no_token = browser.post(
            f"{PAGE_PREFIX}/batches/{cancelled_batch}/cancel",
            data={"conn_id": "xai_default"},
            headers={"Origin": airflow.base_url},
        )
        assert no_token.status_code == 403
    assert listed(ui, "admin")[cancelled_batch]["status"] == "processing"

    with ChromiumPage.launch(airflow.processes, tmp_path / "chromium-profile", height=720) as page:
        ui.browser_login(page, "admin")
        # Under Browse in Airflow's own menu, the page shows inside the UI.
        [plugin] = [
            found for found in airflow.api.get("/api/v2/plugins")["plugins"] if found["name"] == "xai_batch"
        ]
        assert [(view["category"], view["href"]) for view in plugin["external_views"]] == [
            ("browse", f"{PAGE_PREFIX}/")
        ]
        page.goto(f"{airflow.base_url}/plugin/xai-batches")
        page.wait_for(
            "the batches page in the UI",
            f"document.querySelector('iframe')?.contentDocument?.body?.innerText.includes({kept_batch!r})",
            timeout=120,
        )
        keep(page.screenshot(tmp_path / "xai-batches-in-airflow.png"))

        # The page lists the running batches.
        page.goto(f"{airflow.base_url}{PAGE_PREFIX}/")
        page.wait_for_text(kept_batch)
        assert "processing" in page.text()
        keep(page.screenshot(tmp_path / "xai-batches-running.png"))

        # The admin cancels the second batch from its page: a form with the session's token.
        page.goto(f"{airflow.base_url}{batch_page_path(cancelled_batch, 'xai_default')}")
        page.wait_for_text("Cancel batch")
        page.click(
            "[...document.querySelectorAll('button')].find(b => b.innerText.trim() === 'Cancel batch')"
        )
        page.wait_for_text("Cancel requested.")
        assert "cancelled" in page.text()

        airflow.wait_for(
            "the cancelled run to fail",
            lambda: airflow.api.run(UI_DAG_ID, cancelled)["state"] == "failed",
            300,
        )
        assert ti_state(ui, cancelled, "wait") == "failed"
        log = airflow.api.task_log(UI_DAG_ID, cancelled, "wait", 1)
        assert f"Batch {cancelled_batch} was cancelled" in log, log[-3000:]

        # Released, the first batch completes and its results are exported.
        ui.emulator.configure(processing_rate=0)
        finished = airflow.wait_for_run(UI_DAG_ID, kept, timeout=300)
        assert finished["state"] == "success"
        assert links(ui, kept, "export")[LINK_NAME].endswith(batch_page_path(kept_batch, "xai_default"))

        rows = listed(ui, "admin")
        assert (rows[kept_batch]["status"], rows[kept_batch]["done"]) == ("completed", 4)
        assert rows[cancelled_batch]["status"] == "cancelled"
        page.goto(f"{airflow.base_url}{PAGE_PREFIX}/")
        page.wait_for_text("completed")
        keep(page.screenshot(tmp_path / "xai-batches.png"))

        page.goto(f"{airflow.base_url}{batch_page_path(kept_batch, 'xai_default')}")
        page.wait_for_text("manifest.json")
        assert f"results/{kept}" in page.text()
        keep(page.screenshot(tmp_path / "xai-batch.png"))

        # The button in Airflow's own task view, on the finished export.
        page.goto(f"{airflow.base_url}/dags/{UI_DAG_ID}/runs/{kept}/tasks/export/details")
        page.wait_for_text(LINK_NAME, timeout=120)
        keep(page.screenshot(tmp_path / "xai-batch-link.png"))
        href = page.evaluate(
            f"[...document.querySelectorAll('a')].find(a => a.innerText.trim() === {LINK_NAME!r})?.href"
        )
        assert href and href.endswith(batch_page_path(kept_batch, "xai_default")), href
    # The API key never reaches the browser.
    with ui.client("admin") as admin:
        for path in (f"{PAGE_PREFIX}/", f"{PAGE_PREFIX}/batches/{kept_batch}", f"{PAGE_PREFIX}/api/batches"):
            assert EMULATOR_KEY not in admin.get(path).text
