"""The provider without common-ai: everything imports; only the adapter module needs it."""

from __future__ import annotations

import subprocess
import sys


def test_the_provider_imports_without_common_ai_and_the_adapter_says_what_is_missing() -> None:
    code = """
import sys
sys.modules["airflow.providers.common.ai.batch"] = None
import airflow_provider_xai_batch.common_ai, airflow_provider_xai_batch.common_ai.translate
import airflow_provider_xai_batch.operators.batch, airflow_provider_xai_batch.operators.results
try:
    import airflow_provider_xai_batch.common_ai.adapter
except ImportError as error:
    print("ImportError", error.name)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("ImportError airflow.providers.common.ai")
