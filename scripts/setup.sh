#!/usr/bin/env bash
# Creates .venv (if missing) and installs tfxmed with its test dependencies. Idempotent.
# TFXMED_EXTRAS picks the extras (default cpu,dev; e.g. gpu,dev on a CUDA machine).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[${TFXMED_EXTRAS:-cpu,dev}]"
