"""The task links and the batches page in a real deployment, through the REST API and in Chromium.

API server, scheduler, DAG processor and triggerer run as processes (one deployment for this
module), with the simple auth manager's users ``admin`` and ``viewer``. Two runs of one DAG each
make a batch that the emulator holds: the first is released and exported, the second is
cancelled by the admin from the batch's page, and its sensor fails as cancelled.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.headless_chromium import ChromiumPage, chromium_path

from airflow_provider_xai_batch.emulator.process import EmulatorProcess
from airflow_provider_xai_batch.links import LINK_NAME, PAGE_PREFIX, batch_page_path
from benchmarks.airflow_deployment import AirflowDeployment, DeploymentSettings, RestApi


def _newest_airflow() -> bool:
    from airflow import __version__

    return tuple(int(part) for part in __version__.split(".")[:2]) >= (3, 3)


pytestmark = [
    pytest.mark.airflow_processes,
    pytest.mark.slow,
    pytest.mark.skipif(not _newest_airflow(), reason="real processes run on the newest Airflow only"),
    pytest.mark.skipif(
        chromium_path() is None and os.environ.get("XAI_BATCH_REQUIRE_SERVICES") != "1",
        reason="needs Debian's chromium package (make test installs it)",
    ),
]

EMULATOR_KEY = "xai-ui-deployment-key-0123"
HOLD_RATE = 0.001  # one request per 1000 s: batches stay pending until released
PASSWORDS = {"admin": "admin-password-0123", "viewer": "viewer-password-0123"}
DAG_ID = "xai_ui_batches"
# Screenshots for the README are copied here when this variable names a folder.
SCREENSHOT_FOLDER = os.environ.get("XAI_BATCH_SCREENSHOTS")

DAG = f"""
import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_xai_batch.operators.batch import XAIAddBatchRequestsOperator, XAICreateBatchOperator
from airflow_provider_xai_batch.operators.results import XAIBatchResultsOperator
from airflow_provider_xai_batch.sensors.batch import XAIBatchSensor

CHAT = {{"model": "grok-4.3", "messages": [{{"role": "user", "content": "Say hi"}}]}}

with DAG({DAG_ID!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False) as dag:
    create = XAICreateBatchOperator(task_id="create", name="nightly-summaries")
    add = XAIAddBatchRequestsOperator(
        task_id="add", batch_id=create.output, requests=[{{"custom_id": f"q{{i}}", "body": CHAT}} for i in range(4)]
    )
    wait = XAIBatchSensor(task_id="wait", batch_id=create.output, poke_interval=1, timeout=600, deferrable=True)
    export = XAIBatchResultsOperator(
        task_id="export", batch_id=create.output, output_path=os.environ["XAI_UI_OUTPUT"] + "/{{{{ run_id }}}}"
    )
    add >> wait >> export
"""


class PasswordApi(RestApi):
    """The REST API as the simple auth manager's ``admin`` (no all-admins shortcut here)."""

    def login(self) -> None:
        self._http.headers["Authorization"] = f"Bearer {token_of(self.base_url, 'admin')}"


def token_of(base_url: str, user: str) -> str:
    answer = httpx.post(
        f"{base_url}/auth/token", json={"username": user, "password": PASSWORDS[user]}, timeout=60
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


@dataclass
class UiDeployment:
    airflow: AirflowDeployment
    emulator: EmulatorProcess
    tokens: dict[str, str]

    def client(self, user: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return httpx.Client(base_url=self.airflow.base_url, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiDeployment]:
    root = tmp_path_factory.mktemp("ui-deployment")
    passwords = root / "passwords.json"
    passwords.write_text(json.dumps(PASSWORDS))
    settings = DeploymentSettings(
        extra_env={
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "XAI_UI_OUTPUT": f"file://{root / 'results'}",
        }
    )
    airflow = AirflowDeployment(root, settings)
    airflow.api = PasswordApi(airflow.base_url)
    try:
        (airflow.dags_folder / f"{DAG_ID}.py").write_text(DAG)
        emulator = airflow.start_emulator(EMULATOR_KEY, processing_rate=HOLD_RATE)
        airflow.env["AIRFLOW_CONN_XAI_DEFAULT"] = emulator.connection()
        airflow.start()
        airflow.wait_for_dags({DAG_ID})
        tokens = {user: token_of(airflow.base_url, user) for user in PASSWORDS}
        yield UiDeployment(airflow, emulator, tokens)
    finally:
        airflow.stop()
        leftovers = airflow.processes.leftovers()
        assert not leftovers, f"processes left running: {leftovers}"


def ti_state(ui: UiDeployment, run_id: str, task_id: str) -> str | None:
    for ti in ui.airflow.api.task_instances(DAG_ID, run_id):
        if ti["task_id"] == task_id:
            return ti["state"]
    return None


def links(ui: UiDeployment, run_id: str, task_id: str) -> dict[str, Any]:
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/links"
    return dict(ui.airflow.api.get(path)["extra_links"])


def batch_of(ui: UiDeployment, run_id: str) -> str:
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/create/xcomEntries/return_value"
    return str(ui.airflow.api.get(path)["value"]).strip('"')


def listed(ui: UiDeployment, user: str) -> dict[str, dict[str, Any]]:
    with ui.client(user) as client:
        answer = client.get(f"{PAGE_PREFIX}/api/batches")
        answer.raise_for_status()
        return {row["batch_id"]: row for row in answer.json()["batches"]}


def browser_login(page: ChromiumPage, ui: UiDeployment, user: str) -> None:
    # What the UI's login leaves behind: the JWT in the ``_token`` cookie.
    page.send("Network.enable")
    page.send(
        "Network.setCookie", name="_token", value=ui.tokens[user], url=ui.airflow.base_url, httpOnly=True
    )


def keep(path: Path) -> None:
    if SCREENSHOT_FOLDER:
        shutil.copy(path, Path(SCREENSHOT_FOLDER) / path.name)


@pytest.mark.timeout(900)
def test_links_page_permissions_and_cancel(ui: UiDeployment, tmp_path: Path) -> None:
    airflow = ui.airflow
    kept, cancelled = (airflow.api.trigger(DAG_ID)["dag_run_id"] for _ in range(2))
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
        assert (row["status"], row["total"], row["done"], row["dag_id"]) == ("processing", 4, 0, DAG_ID)
        assert row["made_by"] == f"{DAG_ID} / {kept} / create"
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
        browser_login(page, ui, "admin")
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
            "the cancelled run to fail", lambda: airflow.api.run(DAG_ID, cancelled)["state"] == "failed", 300
        )
        assert ti_state(ui, cancelled, "wait") == "failed"
        log = airflow.api.task_log(DAG_ID, cancelled, "wait", 1)
        assert f"Batch {cancelled_batch} was cancelled" in log, log[-3000:]

        # Released, the first batch completes and its results are exported.
        ui.emulator.configure(processing_rate=0)
        finished = airflow.wait_for_run(DAG_ID, kept, timeout=300)
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
        page.goto(f"{airflow.base_url}/dags/{DAG_ID}/runs/{kept}/tasks/export/details")
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
