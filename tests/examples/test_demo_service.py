"""``make demo`` uses the local emulator unless ``XAI_BATCH_DEMO_REAL=1``, and says which service it uses first.

The demo's own entry runs with ``--service-only``: it names the service (starting the emulator
when that is the one) and stops before any DAG runs, so nothing here can reach the real service.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "demo" / "run_demo.py"


def demo_service(**env: str) -> list[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("XAI_API_KEY", "XAI_BASE_URL"))}
    environ.pop("XAI_BATCH_DEMO_REAL", None)
    result = subprocess.run(
        [sys.executable, str(DEMO), "--service-only"],
        env=environ | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.splitlines()


def test_an_api_key_in_the_environment_does_not_lead_the_demo_to_the_real_service() -> None:
    lines = demo_service(XAI_API_KEY="xai-not-a-real-key")
    assert lines[0].startswith("==> using the local emulator: nothing leaves this machine"), lines
    assert "==> XAI_API_KEY and XAI_BASE_URL are ignored" in lines
    [url_line] = [line for line in lines if line.startswith("==> using the local emulator at ")]
    assert url_line.removeprefix("==> using the local emulator at ").startswith("http://127.0.0.1:")
    assert not any("api.x.ai" in line for line in lines), lines


def test_a_base_url_alone_does_not_either() -> None:
    lines = demo_service(XAI_API_KEY="xai-not-a-real-key", XAI_BASE_URL="http://127.0.0.1:9/")
    assert any(line.startswith("==> using the local emulator at http://127.0.0.1:") for line in lines)
    assert not any("127.0.0.1:9/" in line for line in lines), lines


def test_only_the_opt_in_names_the_real_service() -> None:
    # --service-only stops before any call, so naming the real service here contacts nothing.
    lines = demo_service(XAI_API_KEY="xai-not-a-real-key", XAI_BATCH_DEMO_REAL="1")
    assert lines[0] == (
        "==> using the REAL xAI service at https://api.x.ai (XAI_BATCH_DEMO_REAL=1): this run costs money"
    )
    assert not any("emulator" in line for line in lines), lines
