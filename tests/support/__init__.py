"""Helpers shared by the test folders: one home for what several of them need.

``tests/`` is on ``sys.path`` (pytest puts the root ``conftest.py``'s folder there), so test modules
import ``support.<module>`` by name.

- :mod:`support.constants`: the test API key and the model name.
- :mod:`support.batch_requests`: request rows in the accepted shapes, and the ids they end up with.
- :mod:`support.jsonl`: writing and reading JSONL files.
- :mod:`support.dags`: running a DAG file with ``dag.test()`` and reading its task instances.
- :mod:`support.emulator`: reading the emulator's state, and ``xai`` connections to it.
- :mod:`support.headless_chromium`: Debian's chromium driven over the DevTools protocol.

Not here, because the benchmarks use them too: the emulator as a child process and ``free_port``
(``airflow_provider_xai_batch.emulator.process``), and the real Airflow deployment, LocalExecutor
or Celery (``benchmarks.airflow_deployment``).
"""
