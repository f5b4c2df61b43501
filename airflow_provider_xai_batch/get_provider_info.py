"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point.

It also declares the ``xai`` connection form. Airflow 3.2+ builds the form from here
(``ui-field-behaviour`` for the standard fields, ``conn-fields`` for the extras) without importing
the hook; older versions ask ``XAIBatchHook.get_ui_field_behaviour()``, which says the same.

>>> form = get_provider_info()["connection-types"][0]["ui-field-behaviour"]
>>> form["relabeling"]["password"], sorted(form["hidden-fields"])
('API key', ['login', 'port', 'schema'])
"""

from __future__ import annotations

import copy
from typing import Any

from airflow_provider_xai_batch import __version__

DEFAULT_BASE_URL = "https://api.x.ai"  # the client's default; kept literal so this module imports nothing

FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port", "login"],
    "relabeling": {"host": "Base URL", "password": "API key"},
    "placeholders": {
        "host": DEFAULT_BASE_URL,
        "password": "xai-... (empty: the XAI_API_KEY environment variable)",
    },
}


def _number(label: str, description: str, *, integer: bool = True, minimum: float = 0) -> dict[str, Any]:
    # No "default", or the form would write today's value into every connection. A field left empty
    # is saved as null, which the hook reads as "use the provider's default".
    kind = "integer" if integer else "number"
    return {
        "label": label,
        "description": description,
        "schema": {"type": [kind, "null"], "minimum": minimum},
    }


# Extra keys, as the hook reads them; defaults are the client's (see the README's limits table).
EXTRA_FIELDS: dict[str, Any] = {
    "timeout": _number("Timeout (seconds)", "For one HTTP call. Default 120.", integer=False, minimum=1),
    "max_retries": _number(
        "Retries per call", "For 429, 5xx and connection errors, with backoff. Default 8."
    ),
    "connect_timeout": _number(
        "Connect timeout (seconds)", "To open a connection. Default 10.", integer=False, minimum=0.1
    ),
    "connect_retries": _number(
        "Connection retries", "When the service cannot be reached (refused, DNS, timeout). Default 3."
    ),
    "connect_retry_seconds": _number(
        "Connection retry budget (seconds)",
        "At most this long retrying to connect. Default 10.",
        integer=False,
    ),
    "create_lookup_seconds": _number(
        "Create look-up (seconds)",
        "After a lost create answer, look for the batch by name this long before creating again. Default 30.",
        integer=False,
    ),
    "create_calls": _number("Batch creations per window", "Client-side pace. Default 2.", minimum=1),
    "create_window_seconds": _number(
        "Batch creation window (seconds)", "Default 1.", integer=False, minimum=0.001
    ),
    "add_calls": _number("Add calls per window", "Client-side pace. Default 1000.", minimum=1),
    "add_window_seconds": _number(
        "Add call window (seconds)", "A rolling window. Default 30.", integer=False, minimum=0.001
    ),
    "max_add_call_bytes": _number("Largest add call (bytes)", "Default 25000000.", minimum=1),
    "max_request_bytes": _number("Largest request (bytes)", "Default 25000000.", minimum=1),
    "max_requests_per_call": _number(
        "Requests per add call", "Default: as many as fit in the largest add call.", minimum=1
    ),
}


def get_provider_info() -> dict[str, Any]:
    """What ``airflow providers list`` shows and how the ``xai`` connection type reaches the UI."""
    return {
        "package-name": "airflow-provider-xai-batch",
        "name": "xAI Batch",
        "description": "Run large language-model jobs through xAI's Batch API from Airflow DAGs.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "xAI Batch",
                "external-doc-url": "https://docs.x.ai/docs/guides/batch",
                "tags": ["ai"],
            }
        ],
        "hooks": [
            {"integration-name": "xAI Batch", "python-modules": ["airflow_provider_xai_batch.hooks.xai"]}
        ],
        "operators": [
            {
                "integration-name": "xAI Batch",
                "python-modules": [
                    "airflow_provider_xai_batch.operators.batch",
                    "airflow_provider_xai_batch.operators.files",
                    "airflow_provider_xai_batch.operators.one_task",
                    "airflow_provider_xai_batch.operators.results",
                ],
            }
        ],
        "sensors": [
            {"integration-name": "xAI Batch", "python-modules": ["airflow_provider_xai_batch.sensors.batch"]}
        ],
        "triggers": [
            {"integration-name": "xAI Batch", "python-modules": ["airflow_provider_xai_batch.triggers.batch"]}
        ],
        # The *xAI batch* button on every task that makes, fills, waits for or exports a batch.
        "extra-links": ["airflow_provider_xai_batch.links.XAIBatchLink"],
        # The batches page under Browse (Airflow 3.1+; on older versions the plugin adds nothing).
        "plugins": [
            {"name": "xai_batch", "plugin-class": "airflow_provider_xai_batch.plugins.batches.XAIBatchPlugin"}
        ],
        "connection-types": [
            {
                "connection-type": "xai",
                "hook-class-name": "airflow_provider_xai_batch.hooks.xai.XAIBatchHook",
                "hook-name": "xAI Batch",
                "ui-field-behaviour": copy.deepcopy(FIELD_BEHAVIOUR),
                "conn-fields": copy.deepcopy(EXTRA_FIELDS),
            }
        ],
    }
