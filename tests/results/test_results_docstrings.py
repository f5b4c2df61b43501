"""The examples in the docstrings of the export's page, table and options modules run as written."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "name",
    [
        "airflow_provider_xai_batch.results.rows",
        "airflow_provider_xai_batch.results.table",
        "airflow_provider_xai_batch.results.options",
        "airflow_provider_xai_batch.results.media.step",
    ],
)
def test_docstring_examples_run(name: str) -> None:
    failures, tried = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0
