from __future__ import annotations

import doctest
import importlib
import logging
import subprocess
import sys

import pytest

MODULES = [
    "clock",
    "config",
    "errors",
    "faults",
    "handlers",
    "http",
    "media",
    "multipart",
    "pagination",
    "payloads",
    "request_log",
    "routes",
    "server",
    "state",
    "store",
    "strict_json",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(f"airflow_provider_xai_batch.emulator.{name}")
    # Once Airflow is imported (by other tests) its logging prints httpx's request lines to stdout,
    # which doctest would read as the examples' output.
    logging.disable(logging.INFO)
    try:
        failures, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    finally:
        logging.disable(logging.NOTSET)
    assert failures == 0


def test_the_emulator_itself_imports_nothing_from_airflow() -> None:
    code = (
        "import sys, airflow_provider_xai_batch; before = set(sys.modules); "
        "import airflow_provider_xai_batch.emulator.cli; "
        "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] == 'airflow'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
