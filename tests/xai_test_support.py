"""Earlier name of shared test helpers; they live in ``support`` now (kept for existing imports)."""

from __future__ import annotations

from support.constants import TEST_API_KEY
from support.dags import run_dag_file

__all__ = ["TEST_API_KEY", "run_dag_file"]
