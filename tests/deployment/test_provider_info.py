"""The connection form declared in provider info is valid for Airflow and agrees with the hook."""

from __future__ import annotations

import importlib.resources
import json
from typing import Any

import pytest

from airflow_provider_xai_batch.client.policy import ClientLimits, RetryPolicy
from airflow_provider_xai_batch.client.protocol import DEFAULT_BASE_URL
from airflow_provider_xai_batch.get_provider_info import get_provider_info
from airflow_provider_xai_batch.hooks.xai import XAIBatchHook, client_options


def xai_connection_type() -> dict[str, Any]:
    [connection_type] = get_provider_info()["connection-types"]
    return dict(connection_type)


def test_the_form_follows_airflows_strict_provider_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema_file = importlib.resources.files("airflow") / "provider.yaml.schema.json"
    if not schema_file.is_file():
        pytest.skip("this Airflow ships no provider.yaml schema")
    schema = json.loads(schema_file.read_text())["properties"]["connection-types"]
    if "conn-fields" not in schema["items"]["properties"]:
        pytest.skip("this Airflow reads the form from the hook only")
    jsonschema.validate([xai_connection_type()], schema)


def test_the_provider_info_follows_the_schema_airflow_loads_it_with() -> None:
    # Airflow validates every provider's info against this schema when it discovers providers;
    # 3.4 tightened it (connection types, decorators, plugins, queues), so each leg checks its own.
    jsonschema = pytest.importorskip("jsonschema")
    schema_file = importlib.resources.files("airflow") / "provider_info.schema.json"
    schema = json.loads(schema_file.read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_the_hook_and_the_provider_info_describe_the_same_form() -> None:
    declared = xai_connection_type()["ui-field-behaviour"]
    from_hook = XAIBatchHook.get_ui_field_behaviour()
    assert sorted(declared["hidden-fields"]) == sorted(from_hook["hidden_fields"])
    assert declared["relabeling"] == from_hook["relabeling"]
    for name, text in declared["placeholders"].items():
        assert from_hook["placeholders"][name] == text
    assert declared["placeholders"]["host"] == DEFAULT_BASE_URL


def test_every_extra_field_is_a_key_the_hook_reads() -> None:
    fields = xai_connection_type()["conn-fields"]
    assert set(fields) == {
        "timeout",
        "max_retries",
        "connect_timeout",
        "connect_retries",
        "connect_retry_seconds",
        "create_lookup_seconds",
        *ClientLimits.__dataclass_fields__,
    }
    # A value typed into each field reaches the client.
    options = client_options({name: 7 for name in fields})
    assert options["timeout"] == 7 and options["max_retries"] == 7
    assert options["connect_timeout"] == 7 and options["create_lookup_seconds"] == 7
    assert options["retry_policy"].connect_retries == 7
    assert options["retry_policy"].connect_retry_seconds == 7
    assert all(getattr(options["limits"], name) == 7 for name in ClientLimits.__dataclass_fields__)


def test_fields_the_form_leaves_empty_mean_the_defaults() -> None:
    saved_by_the_form = dict.fromkeys(xai_connection_type()["conn-fields"])  # every value null
    options = client_options(saved_by_the_form)
    assert options == {"limits": ClientLimits(), "retry_policy": RetryPolicy()}
