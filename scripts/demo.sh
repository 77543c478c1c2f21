#!/usr/bin/env bash
# Set up and run the whole pipeline on the synthetic default:
# generate → TFRecords → train ResNet50+CSAM → evaluate (AUC, Grad-CAM IoU, pointing game) → SavedModel.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
exec .venv/bin/python -m tfxmed demo --config configs/quickstart.yaml "$@"
