"""The examples in the docstrings of the upload and resubmission modules run as written."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "name",
    [
        "airflow_provider_xai_batch.uploads",
        "airflow_provider_xai_batch.resubmit",
        "airflow_provider_xai_batch.resubmit.policy",
        "airflow_provider_xai_batch.resubmit.rounds",
        "airflow_provider_xai_batch.resubmit.merge",
    ],
)
def test_docstring_examples_run(name: str) -> None:
    failures, tried = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0
