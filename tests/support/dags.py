"""Running a DAG file with ``dag.test()``, and reading what its task instances did."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any


def run_dag_file(source: str, dag_id: str, folder: Path, **test_kwargs: object) -> Any:
    """Write ``source`` as a DAG file in ``folder``, load it and run ``dag.test()``; return the run.

    Airflow 3.3 syncs ``dag.test()`` DAGs from the DAG bundle on disk, so test DAGs live in real files.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dag_id}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"test_dag_{dag_id}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag.test(**test_kwargs)


def task_states(run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def task_tries(run: Any) -> dict[str, int]:
    return {ti.task_id: int(ti.try_number) for ti in run.get_task_instances()}
