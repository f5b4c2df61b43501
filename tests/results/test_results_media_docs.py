"""The examples in the docstrings of the media modules, and of the export's pages, tables and options, run as written."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "name",
    [
        "airflow_provider_xai_batch.results.media",
        "airflow_provider_xai_batch.results.media.policy",
        "airflow_provider_xai_batch.results.media.naming",
        "airflow_provider_xai_batch.results.media.items",
        "airflow_provider_xai_batch.results.media.tally",
        "airflow_provider_xai_batch.results.media.step",
        "airflow_provider_xai_batch.results.rows",
        "airflow_provider_xai_batch.results.table",
        "airflow_provider_xai_batch.results.options",
    ],
)
def test_docstring_examples_run(name: str) -> None:
    failures, tried = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0
