#!/usr/bin/env bash
# Create .venv with Python >= 3.12, install pymlsem with its test tools and compile its engines (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  PY=""
  for candidate in python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
      PY="$candidate"; break
    fi
  done
  if [ -z "$PY" ] && command -v pyenv >/dev/null 2>&1; then
    version=$(pyenv versions --bare | grep -E '^3\.1[2-9]' | head -n 1 || true)
    [ -n "$version" ] && PY="$(PYENV_VERSION=$version pyenv which python3)"
  fi
  if [ -z "$PY" ]; then
    echo "pymlsem needs Python >= 3.12 (none found on PATH or in pyenv)" >&2
    exit 1
  fi
  "$PY" -m venv .venv
fi
# install quietly with uv (downloads and installs in parallel: ~30 s on a fresh 2-core machine, pip ~2.5 min),
# or pip where uv fails; show the installers' output only when both fail. Both write the installed modules'
# bytecode (.pyc) now: where PYTHONDONTWRITEBYTECODE is set (as on CI machines), Python would otherwise
# compile ~2,500 modules from source in every process (import pymlsem: 9 s instead of 2.5 s)
if ! { .venv/bin/python -m pip install --quiet uv &&
       .venv/bin/python -m uv pip install --quiet --compile-bytecode --python .venv/bin/python -e ".[dev]"
     } > .venv/install.log 2>&1 &&
   ! { .venv/bin/python -m pip install --quiet --upgrade pip &&
       .venv/bin/python -m pip install --quiet -e ".[dev]"; } >> .venv/install.log 2>&1; then
  cat .venv/install.log >&2
  exit 1
fi
# the bytecode of pymlsem itself and of its tests (an editable install: not in site-packages); a changed
# module is compiled again when imported, as without its .pyc
.venv/bin/python -m compileall -q pymlsem tests > /dev/null
# compile the engine families for this machine once (a few seconds when they are compiled already);
# scripts/test.sh compiles them with the families its tests need, in one pool (PYMLSEM_SETUP_WARMUP=0)
if [ "${PYMLSEM_SETUP_WARMUP:-1}" != 0 ]; then
  .venv/bin/python -m pymlsem warmup
fi
