#!/usr/bin/env bash
# Multi-worker training by hand: 2 worker processes on this machine (TF_CONFIG on free ports) train one
# run with MultiWorkerMirroredStrategy. Worker 0 is the chief: it converts the dataset and writes the run;
# worker 1 waits for the data and writes only into a temporary folder that it removes.
#
#   scripts/multiworker_local.sh [CONFIG] [--set key=value ...]     (default CONFIG: configs/tiny.yaml)
#
# Kill both workers mid-run and start the script again with the same run directory: they resume from
# RUN/backup, and the run still ends with the configured epoch count.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
CONFIG=configs/tiny.yaml
if [[ $# -gt 0 && $1 != --* ]]; then CONFIG=$1; shift; fi
RUN_DIR=${RUN_DIR:-runs/multiworker}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}

read -r PORT0 PORT1 < <("$PYTHON" - <<'EOF'
import socket
probes = [socket.socket() for _ in range(2)]
for probe in probes:
    probe.bind(("localhost", 0))
print(*(probe.getsockname()[1] for probe in probes))
EOF
)
LOGS=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM
for index in 0 1; do
  TF_CONFIG="{\"cluster\": {\"worker\": [\"localhost:$PORT0\", \"localhost:$PORT1\"]}, \"task\": {\"type\": \"worker\", \"index\": $index}}" \
    "$PYTHON" -m tfxmed train --config "$CONFIG" --strategy=multiworker --set runtime.run_dir="$RUN_DIR" "$@" \
    >"$LOGS/worker$index.out" 2>"$LOGS/worker$index.err" &
  pids+=($!)
  echo "worker $index: pid $!, localhost:$([[ $index == 0 ]] && echo "$PORT0" || echo "$PORT1"), log $LOGS/worker$index.err"
done
# One worker failing leaves the other waiting in a collective: stop both (the EXIT trap) at the first failure.
for _ in 0 1; do
  if ! wait -n; then  # the next worker to end
    echo "a worker failed; the tails of their logs:" >&2
    tail -n 15 "$LOGS"/worker*.err >&2
    exit 1
  fi
done
pids=()
cat "$LOGS/worker0.out"
echo "the run went to $RUN_DIR (written by the chief, worker 0): $(ls "$RUN_DIR" | tr '\n' ' ')"
