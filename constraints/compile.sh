#!/usr/bin/env bash
# Pin every Airflow leg: constraints/airflow-X.txt from constraints/airflow-X.in and pyproject.toml.
#
#   constraints/compile.sh                         re-pin every leg after a change to its inputs
#   constraints/compile.sh --upgrade-package NAME  ... and move NAME to its newest allowed version
#   constraints/compile.sh --check                 exit 1 if a committed file is not what this writes
#
# A leg is an .in file: the Airflow pin and any cap of its own, and an `# extras:` line naming the
# extras its virtualenv installs (the Makefile reads the same line, so the two cannot differ).
# The committed file seeds each run: uv keeps a pin while the inputs still allow it, so a run that
# changes no input rewrites the same bytes, and a new extra adds its packages without moving the
# rest. `--check` resolves from the uv cache when it can (no network), and over the network when
# the cache lacks something or gives another answer (a fresh machine). Needs the uv that
# `make install` puts in .venv-tools.
set -euo pipefail
cd "$(dirname "$0")/.."
uv=${UV:-.venv-tools/bin/uv}
# Every leg is resolved for the Python and platform that CI runs.
python_version=3.11
platform=x86_64-unknown-linux-gnu

check=0
uv_args=()
for arg in "$@"; do
  case "$arg" in
    --check) check=1 ;;
    *) uv_args+=("$arg") ;;
  esac
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# pin LEG OUT [uv args...]: write LEG's pins to OUT, seeded by whatever OUT holds already.
pin() {
  local leg=$1 out=$2
  shift 2
  local input="constraints/airflow-$leg.in"
  local extras
  extras=$(sed -n 's/^# extras: *//p' "$input")
  if [ -z "$extras" ]; then
    echo "$input: no '# extras:' line" >&2
    return 1
  fi
  local extra_args=()
  local extra
  for extra in ${extras//,/ }; do
    extra_args+=(--extra "$extra")
  done
  # uv reads its own output file for the pins to keep; the header is a comment to it. The explicit
  # returns matter: a caller's `if` turns off `set -e` in here.
  "$uv" pip compile -q pyproject.toml "${extra_args[@]}" -c "$input" \
    --python-version "$python_version" --python-platform "$platform" \
    --no-header "$@" -o "$work/body.txt" </dev/null || return 1
  {
    echo "# Written by constraints/compile.sh from $input and pyproject.toml: do not edit by hand."
    echo "# extras: $extras"
    grep -v '^# \(Written by constraints/compile.sh\|extras:\)' "$work/body.txt"
  } >"$out" || return 1
}

status=0
for input in constraints/airflow-*.in; do
  leg=$(basename "$input" .in)
  leg=${leg#airflow-}
  committed="constraints/airflow-$leg.txt"
  rm -f "$work/body.txt"
  [ -f "$committed" ] && cp "$committed" "$work/body.txt"
  if [ "$check" = 0 ]; then
    pin "$leg" "$committed" "${uv_args[@]}"
    echo "pinned $committed"
    continue
  fi
  if [ ! -f "$committed" ]; then
    echo "$committed is missing: run constraints/compile.sh" >&2
    status=1
    continue
  fi
  if ! pin "$leg" "$work/check.txt" --offline "${uv_args[@]}" 2>"$work/offline.err" \
    || ! cmp -s "$committed" "$work/check.txt"; then
    # The cache lacks a package's metadata (a fresh machine): the index can answer instead. Offline,
    # uv may also settle on an older release whose metadata it happens to hold (the pinned one's
    # wheels in the cache being for another platform), so only the index can say a pin is wrong.
    cp "$committed" "$work/body.txt"
    pin "$leg" "$work/check.txt" "${uv_args[@]}"
  fi
  if diff -u "$committed" "$work/check.txt" >"$work/diff.txt"; then
    echo "$committed is what constraints/compile.sh writes"
  else
    cat "$work/diff.txt" >&2
    echo "$committed differs from what constraints/compile.sh writes (above): run it and commit" >&2
    status=1
  fi
done
exit "$status"
