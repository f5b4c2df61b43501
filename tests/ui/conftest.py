"""A failing test of the UI deployment shows every Airflow process's log in its report."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    running = getattr(item, "funcargs", {}).get("ui")
    airflow = getattr(running, "airflow", None)
    if report.failed and airflow is not None:
        report.sections.append(("Airflow processes", airflow.failure_report()))
