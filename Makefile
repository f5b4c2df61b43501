# Two commands matter: `make demo` and `make test`. Everything else is a building block.
PYTHON ?= python3
TOOLS := .venv-tools
UV := $(TOOLS)/bin/uv
UV_VERSION := 0.13.8
export UV_LINK_MODE := copy
# One virtualenv per Airflow leg, each pinned by constraints/airflow-LEG.txt (see constraints/compile.sh).
# The newest released line runs everything; the oldest supported one and the next (a pre-release until
# it is published: its pin is the one line of constraints/airflow-3.4.in) run the in-process suite.
VENV := .venv
VENV_OLD := .venv-airflow-3.0
VENV_NEXT := .venv-airflow-3.4
# The in-process tests run on this many pytest-xdist workers ("auto": one per core, "0": none),
# on the newest Airflow with the slow in-process scenarios (chaos DAG, benchmark smoke runs, the
# test kit's own pytest run) among them. The tests that start real Airflow processes, the browser
# or Celery run once, one at a time so they never compete with each other; they mostly wait on
# those processes, so in-process suites run beside them (see `test`).
XDIST ?= auto
PYTEST := -m pytest -q -p no:cacheprovider
IN_PROCESS := -n $(XDIST) --dist worksteal -m "not airflow_processes and not slow"
NEWEST_IN_PROCESS := -n $(XDIST) --dist worksteal -m "not airflow_processes" --durations=10
REAL_PROCESSES := -m airflow_processes --durations=15

.PHONY: install install-oldest install-next chromium test test-newest test-in-process test-real-processes test-real-then-next test-in-process-then-oldest test-oldest test-next lint demo bench emulator clean constraints scale

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q uv==$(UV_VERSION)

# $(call leg-venv,DIR,LEG): DIR holds the package with the extras named on the `# extras:` line of
# constraints/airflow-LEG.in (the line constraints/compile.sh pins), at LEG's pinned versions.
# Installed with bytecode compiled once, as pip does by default: with PYTHONDONTWRITEBYTECODE set
# (as on many CI images) and no .pyc files, every Airflow process the tests start (scheduler,
# API server, each task) would otherwise compile Airflow from source again, about 3 s of CPU each.
define leg-venv
	$(UV) venv -q --allow-existing --python $(PYTHON) $(1)
	$(UV) pip install -q --compile-bytecode --python $(1)/bin/python -c constraints/airflow-$(2).txt \
		-e '.[$(shell sed -n 's/^# extras: *//p' constraints/airflow-$(2).in)]'
	touch $(1)/.installed
endef

$(VENV)/.installed: $(UV) Makefile pyproject.toml constraints/airflow-3.3.txt
	$(call leg-venv,$(VENV),3.3)

$(VENV_OLD)/.installed: $(UV) Makefile pyproject.toml constraints/airflow-3.0.txt
	$(call leg-venv,$(VENV_OLD),3.0)

$(VENV_NEXT)/.installed: $(UV) Makefile pyproject.toml constraints/airflow-3.4.txt
	$(call leg-venv,$(VENV_NEXT),3.4)

install: $(VENV)/.installed
install-oldest: $(VENV_OLD)/.installed
install-next: $(VENV_NEXT)/.installed

# Re-pin every leg after a change to pyproject.toml's dependencies or a constraints/*.in file.
constraints: $(UV)
	constraints/compile.sh

# The browser test drives Debian's chromium (headless); installed only when it is missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium)

lint: install
	constraints/compile.sh --check
	$(VENV)/bin/ruff check airflow_provider_xai_batch tests benchmarks example_dags demo
	$(VENV)/bin/ruff format --check airflow_provider_xai_batch tests benchmarks example_dags demo
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --config-file tests/mypy.ini

test-in-process: install
	$(VENV)/bin/python $(PYTEST) $(NEWEST_IN_PROCESS)

test-real-processes: install
	$(VENV)/bin/python $(PYTEST) $(REAL_PROCESSES)

test-newest: test-in-process test-real-processes

# The oldest Airflow the package claims to support runs the suite too, so the claim stays true.
test-oldest: install-oldest
	$(VENV_OLD)/bin/python $(PYTEST) $(IN_PROCESS)

# The next Airflow, so its changes are found before users find them.
test-next: install-next
	$(VENV_NEXT)/bin/python $(PYTEST) $(IN_PROCESS)

# `make test` runs two jobs side by side, of about the same length: the real-process tests (which
# mostly wait on the processes they start) then the next leg, and the newest leg's in-process
# tests then the oldest leg's. Each job's output is printed whole when it ends.
test-real-then-next:
	$(MAKE) --no-print-directory test-real-processes
	$(MAKE) --no-print-directory test-next

test-in-process-then-oldest:
	$(MAKE) --no-print-directory test-in-process
	$(MAKE) --no-print-directory test-oldest

test: chromium lint install-oldest install-next
	$(MAKE) --no-print-directory -j2 --output-sync=recurse test-real-then-next test-in-process-then-oldest

demo: install
	$(VENV)/bin/python demo/run_demo.py

bench: install
	$(VENV)/bin/python -m benchmarks.run

emulator: install
	$(VENV)/bin/xai-batch-emulator --api-key local-key

clean:
	rm -rf $(TOOLS) $(VENV) $(VENV_OLD) $(VENV_NEXT) demo-output .pytest_cache .mypy_cache .ruff_cache

# The Celery scenario at volume: 200,000 requests in 16 shards (4 on S3); `make test` runs it at 20,000.
scale: install
	XAI_BATCH_SCALE_REQUESTS=200000 XAI_BATCH_SCALE_SHARDS=16 XAI_BATCH_SCALE_S3_SHARDS=4 $(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/distributed/test_celery_scenario.py
