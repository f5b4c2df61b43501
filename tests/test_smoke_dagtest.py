from __future__ import annotations

from support.dags import run_dag_file

SOURCE = """
import pendulum
from airflow.sdk import DAG, task
with DAG("smoke", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    @task
    def hello():
        return 3
    hello()
"""


def test_dag_runs(dags_folder):
    run = run_dag_file(SOURCE, "smoke", dags_folder)
    assert run.state == "success"
