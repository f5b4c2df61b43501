"""``python -m airflow_provider_xai_batch.emulator``: the same as ``xai-batch-emulator``."""

from __future__ import annotations

import sys

from airflow_provider_xai_batch.emulator.cli import main

sys.exit(main())
