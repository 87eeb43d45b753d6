#!/usr/bin/env bash
# Build the documentation site into docs/_build/html, executing every example notebook (set up first).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
# one reading process per core (-j auto): the notebooks execute two at a time on two cores (5.8 against ~8
# minutes on this 2-core machine: much of a notebook's time is single-threaded Python, import and set-up)
.venv/bin/python -m sphinx -W --keep-going -q -j auto -b html docs docs/_build/html "$@"
