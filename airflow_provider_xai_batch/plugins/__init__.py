"""The provider's Airflow plugin: the *xAI batches* page under Browse (Airflow 3.1+).

- :mod:`.batches`: the plugin class Airflow loads (declared in the provider info).
- :mod:`.app`: the pages, a FastAPI app the API server mounts under ``/xai-batch``.
- :mod:`.access`: who may see and cancel a batch; the cross-site checks on a cancel (pure).
- :mod:`.records`: which task made a batch and where its results went, from Airflow's database.
- :mod:`.render`: the HTML (pure).
"""

from __future__ import annotations
