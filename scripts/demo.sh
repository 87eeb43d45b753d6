#!/usr/bin/env bash
# Set up (first run only) and fit the seed two-level SEM on lavaan's Demo.twolevel data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python examples/demo_twolevel.py
