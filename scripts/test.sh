#!/usr/bin/env bash
# Set up and run the test suite (the same command CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The HTML report test renders in headless Chromium, and the reader-study test drives it with Selenium through
# chromedriver: Debian's packages, installed when running as root with apt-get.
if { ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; } \
    && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null 2>&1 \
    || echo "note: could not install chromium / chromium-driver; the browser tests will be skipped" >&2
fi
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
# Two workers (pytest-xdist): most of a test's time is single-threaded Python (tracing, building models),
# so two processes keep both cores busy. TFXMED_TEST_WORKERS=0 runs in one process (for a debugger).
# --durations: the slowest tests, so the suite can be kept under ~15 minutes on 2 cores.
exec .venv/bin/python -m pytest -q -n "${TFXMED_TEST_WORKERS:-2}" --dist worksteal --durations=15 "$@"
