#!/usr/bin/env bash
# Re-resolve the pinned constraint files from pyproject.toml and the per-Airflow inputs.
# Usage: constraints/compile.sh   (needs the uv that `make install` puts in .venv-tools)
set -euo pipefail
cd "$(dirname "$0")/.."
uv=.venv-tools/bin/uv
# The distributed tests (Celery, Redis, PostgreSQL) run on the newest leg only.
for version in 3.3 3.0; do
  extras=(--extra test --extra parquet)
  [ "$version" = 3.3 ] && extras+=(--extra distributed)
  "$uv" pip compile -q pyproject.toml "${extras[@]}" -c "constraints/airflow-$version.in" \
    --python-version 3.11 --no-header -o "constraints/airflow-$version.txt"
done
