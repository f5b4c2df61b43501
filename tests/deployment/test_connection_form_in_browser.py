"""The add-connection form a user sees in the Airflow UI, in headless Chromium.

Picks the *xAI Batch* connection type as a user would (typing into the type picker), checks the
fields shown, fills the form, saves it, and uses the saved connection against the emulator. A
screenshot of the form is kept next to the test's temporary files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from deployment_support import CHAT, Deployment, newest_airflow_only
from support.headless_chromium import ChromiumPage, needs_chromium

from airflow_provider_xai_batch.client import XAIBatchClient
from airflow_provider_xai_batch.hooks.xai import base_url_of, client_options

pytestmark = [
    pytest.mark.airflow_processes,
    pytest.mark.slow,
    newest_airflow_only(),
    # CI (which sets XAI_BATCH_REQUIRE_SERVICES) must run it: a missing browser fails there.
    needs_chromium(),
]

DIALOG = "document.querySelector('[role=dialog]')"


def button(text: str) -> str:
    return f"[...{DIALOG}.querySelectorAll('button')].find(b => b.innerText.trim() === {text!r})"


def field(name: str) -> str:
    return f"{DIALOG}.querySelector('[name={name}]')"


def visible_labels(page: ChromiumPage) -> list[str]:
    """The labels of the form's standard fields, as rendered (hidden fields are not in the page)."""
    return list(
        page.evaluate(
            f"[...{DIALOG}.querySelectorAll('label')].filter(l => l.offsetParent !== null)"
            ".map(l => l.innerText.replace('*', '').trim()).filter(t => t)"
        )
    )


@pytest.mark.timeout(600)
def test_the_add_connection_form_asks_for_an_api_key(deployment: Deployment, tmp_path: Path) -> None:
    airflow = deployment.airflow
    screenshots = [tmp_path / "add-xai-connection.png", tmp_path / "add-xai-connection-extras.png"]
    with ChromiumPage.launch(airflow.processes, tmp_path / "chromium-profile") as page:
        deployment.browser_login(page, "admin")
        page.goto(f"{airflow.base_url}/connections")
        page.wait_for_text("Add Connection", timeout=120)
        page.click(
            "[...document.querySelectorAll('button')].find(b => b.innerText.trim() === 'Add Connection')"
        )
        page.wait_for_text("Connection Type")
        page.fill(f"{DIALOG}.querySelector('input[role=combobox]')", "xAI")
        page.wait_for(
            "the xAI Batch option",
            "[...document.querySelectorAll('[role=option]')].some(o => o.innerText === 'xAI Batch')",
        )
        page.press("Enter", 13)
        page.wait_for_text("API key")

        labels = visible_labels(page)
        assert {"API key", "Base URL"} <= set(labels), labels
        assert not {"Login", "Port", "Schema", "Password", "Host"} & set(labels), labels
        assert page.evaluate(f"{field('password')}.type") == "password"
        assert page.evaluate(f"{field('host')}.placeholder") == "https://api.x.ai"
        for hidden in ("login", "port", "schema"):
            assert page.evaluate(f"{field(hidden)} === null"), hidden

        page.fill(field("connection_id"), "xai_from_the_form")
        page.fill(field("host"), deployment.emulator.url)
        page.fill(field("password"), deployment.emulator.api_key)
        page.screenshot(screenshots[0])
        page.click(button("Extra Fields"))
        page.wait_for_text("Timeout (seconds)")
        page.fill(field("element_timeout"), "30")
        page.screenshot(screenshots[1])
        assert "xai-deployment" not in page.text()  # the key is typed into a masked field
        page.click(button("Save"))
        page.wait_for("the dialog to close", f"{DIALOG} === null")

    saved = airflow.api.get("/api/v2/connections/xai_from_the_form")
    assert (saved["conn_type"], saved["host"], saved["password"]) == ("xai", deployment.emulator.url, "***")
    extra = json.loads(saved["extra"])
    assert extra["timeout"] == 30
    # What the form saved is a working connection: fields left empty mean the defaults.
    options = client_options(extra)
    assert options["timeout"] == 30 and options["limits"].add_calls == 1000
    with XAIBatchClient(
        api_key=deployment.emulator.api_key, base_url=base_url_of(saved["host"]), **options
    ) as client:
        batch = client.create_batch("from-the-form")
        assert client.add_requests(batch.batch_id, [{"custom_id": "f1", "body": CHAT}]) == 1
    assert all(path.stat().st_size > 10_000 for path in screenshots)
