"""Helpers shared by the test folders: one home for what several of them need.

``tests/`` is on ``sys.path`` (pytest puts the root ``conftest.py``'s folder there), so test modules
import ``support.<module>`` by name.

- :mod:`support.constants`: the test API key and the model name.
- :mod:`support.batch_requests`: request rows in the accepted shapes, and the ids they end up with.
- :mod:`support.jsonl`: writing and reading JSONL files.
- :mod:`support.dags`: running a DAG file with ``dag.test()`` and reading its task instances.
- :mod:`support.emulator`: reading the emulator's state, and ``xai`` connections to it.
"""
