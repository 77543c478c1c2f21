"""What batch-norm folding and bfloat16 each buy, side by side in one run; prints JSON.

ResNet50 + CSAM (weights=None, batch 16) at 64 and 224 px: ms/image of Grad-CAM (on `csam`) and of IG
(8 steps) for four set-ups of the same explainer — float32 and bfloat16 (`precision="bfloat16"`), each
without and with folding (folding is the default) — and the speed-up of each over float32 unfolded.
(Under a bfloat16 policy Keras computes BatchNormalization in float32, so unfolded bfloat16 casts
around every BN.)

    python scripts/benchmark_folding.py [--sizes 64,224]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tfxmed.config import ModelConfig  # noqa: E402
from tfxmed.explain import GradCam, IntegratedGradients  # noqa: E402
from tfxmed.models import build_model  # noqa: E402


class _UnfoldedGradCam(GradCam):
    fold_batch_norm = False


class _UnfoldedIntegratedGradients(IntegratedGradients):
    fold_batch_norm = False


SETUPS = {
    "float32_unfolded": (_UnfoldedGradCam, _UnfoldedIntegratedGradients, "float32"),
    "float32_folded": (GradCam, IntegratedGradients, "float32"),
    "bfloat16_unfolded": (_UnfoldedGradCam, _UnfoldedIntegratedGradients, "bfloat16"),
    "bfloat16_folded": (GradCam, IntegratedGradients, "bfloat16"),
}


def _ms_per_image(explainer, images, targets, repeats=2) -> float:
    explainer(images, targets)  # tracing is not timed
    started = time.perf_counter()
    for _ in range(repeats):
        explainer(images, targets)
    return 1000 * (time.perf_counter() - started) / repeats / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="64,224")
    args = parser.parse_args()
    report = {}
    for size in [int(value) for value in args.sizes.split(",")]:
        keras.utils.set_random_seed(0)
        model = build_model(ModelConfig(), (size, size, 1), 2, False)
        images = np.random.default_rng(0).normal(size=(16, size, size, 1)).astype("float32")
        targets = np.ones(16, dtype=int)
        entry = {}
        for name, (cam, integrated, precision) in SETUPS.items():
            entry[name] = {
                "gradcam_ms_per_image": _ms_per_image(
                    cam(model, layer="csam", batch_size=16, precision=precision), images, targets),
                "ig8_ms_per_image": _ms_per_image(
                    integrated(model, steps=8, batch_size=16, precision=precision), images[:4], targets[:4], repeats=1),
            }
        base = entry["float32_unfolded"]
        for name in SETUPS:
            entry[name]["gradcam_speedup"] = base["gradcam_ms_per_image"] / entry[name]["gradcam_ms_per_image"]
            entry[name]["ig8_speedup"] = base["ig8_ms_per_image"] / entry[name]["ig8_ms_per_image"]
        report[f"resnet50_csam_{size}"] = entry
        print(json.dumps({size: entry}), file=sys.stderr, flush=True)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
