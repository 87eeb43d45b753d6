#!/usr/bin/env bash
# Build the documentation site into docs/_build/html, executing every example notebook (set up first).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
.venv/bin/python -m sphinx -W --keep-going -q -b html docs docs/_build/html "$@"
