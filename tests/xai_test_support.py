"""Helpers shared by test modules (imported by name: ``conftest`` is ambiguous across folders)."""

from __future__ import annotations

from pathlib import Path

TEST_API_KEY = "xai-test-key-0123456789"


def run_dag_file(source: str, dag_id: str, folder: Path, **test_kwargs: object) -> object:
    """Write ``source`` as a DAG file in ``folder``, load it and run ``dag.test()``; return the run.

    Airflow 3.3 syncs ``dag.test()`` DAGs from the DAG bundle on disk, so test DAGs live in real files.
    """
    import importlib.util

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dag_id}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"test_dag_{dag_id}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = module.dag
    return dag.test(**test_kwargs)
