# Two commands matter: `make demo` and `make test`. Everything else is a building block.
PYTHON ?= python3
TOOLS := .venv-tools
UV := $(TOOLS)/bin/uv
VENV := .venv
VENV_OLD := .venv-airflow-3.0
UV_VERSION := 0.13.8
export UV_LINK_MODE := copy

.PHONY: install install-oldest chromium test test-newest test-oldest lint demo bench emulator clean constraints

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q uv==$(UV_VERSION)

$(VENV)/.installed: $(UV) pyproject.toml constraints/airflow-3.3.txt
	$(UV) venv -q --allow-existing --python $(PYTHON) $(VENV)
	$(UV) pip install -q --python $(VENV)/bin/python -c constraints/airflow-3.3.txt -e '.[test,distributed,common-ai,openlineage,parquet]'
	touch $@

$(VENV_OLD)/.installed: $(UV) pyproject.toml constraints/airflow-3.0.txt
	$(UV) venv -q --allow-existing --python $(PYTHON) $(VENV_OLD)
	$(UV) pip install -q --python $(VENV_OLD)/bin/python -c constraints/airflow-3.0.txt -e '.[test,openlineage,parquet]'
	touch $@

install: $(VENV)/.installed
install-oldest: $(VENV_OLD)/.installed

# The browser test drives Debian's chromium (headless); installed only when it is missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium)

lint: install
	$(VENV)/bin/ruff check airflow_provider_xai_batch tests benchmarks example_dags demo
	$(VENV)/bin/ruff format --check airflow_provider_xai_batch tests benchmarks example_dags demo
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --config-file tests/mypy.ini

test-newest: install
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider

# The oldest Airflow the package claims to support runs the suite too, so the claim stays true.
test-oldest: install-oldest
	$(VENV_OLD)/bin/python -m pytest -q -p no:cacheprovider -m "not airflow_processes and not slow"

test: chromium lint test-newest test-oldest

demo: install
	$(VENV)/bin/python demo/run_demo.py

bench: install
	$(VENV)/bin/python -m benchmarks.run

emulator: install
	$(VENV)/bin/xai-batch-emulator --api-key local-key

clean:
	rm -rf $(TOOLS) $(VENV) $(VENV_OLD) demo-output .pytest_cache .mypy_cache .ruff_cache

# The Celery scenario at volume: 200,000 requests in 16 shards (4 on S3); `make test` runs it at 20,000.
scale: install
	XAI_BATCH_SCALE_REQUESTS=200000 XAI_BATCH_SCALE_SHARDS=16 XAI_BATCH_SCALE_S3_SHARDS=4 $(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/distributed/test_celery_scenario.py
