#!/usr/bin/env bash
# Set up (first run only) and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
PYMLSEM_SETUP_WARMUP=0 bash scripts/setup.sh
# two pytest workers on two cores: one BLAS thread each (threaded OpenBLAS makes the small batched
# factorisations of the likelihoods up to 100x slower when the workers compete)
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}" OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
# compile the engine families the tests run as machine code before the workers start (once per machine), so
# that the two workers do not both compile the same one: the default families but one, in the same pool as the
# set-up script's, each latent family after the one whose code it reuses (tests/engine/compiled_families.py)
.venv/bin/python -m pymlsem warmup $(.venv/bin/python -m tests.engine.compiled_families)
# the 15 slowest tests are listed at the end (where the time of a run goes)
.venv/bin/python -m pytest -n 2 -q --durations=15 "$@"
