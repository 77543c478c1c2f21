"""Deletion / insertion AUC: ours against xplique's on the same model, images and maps, in one run.

    XPLIQUE_PYTHON=/path/to/xplique-venv/bin/python python scripts/benchmark_metrics.py \
        [--checkpoint runs/quickstart/checkpoints/best.keras] [--images 100] [--steps 16]

100 synthetic 64-px test images (lesions and normals), Grad-CAM maps of the true class from our
batched explainer, then deletion (zero baseline) and insertion (from a σ=5 blur) with `steps`
perturbation steps: ours (`tfxmed.metrics.faithfulness.deletion_insertion`, compiled forward pass)
and xplique's `Deletion` / `Insertion` (in their own environment: xplique 2.0.2 pins
tensorflow<=2.20) with the same baselines. Prints JSON: seconds, AUCs and their differences, also with
the maps' exact ties broken by a 1e-6 jitter (the libraries order tied pixels differently).
Without --checkpoint a fixed-seed, untrained ResNet50+CSAM is used (values then say little about
the explainer; the comparison of implementations still holds).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfxmed.config import ModelConfig, load_config  # noqa: E402
from tfxmed.data.synthetic import SyntheticSpec, generate  # noqa: E402
from tfxmed.explain.grad_cam import GradCam  # noqa: E402
from tfxmed.metrics.faithfulness import deletion_insertion  # noqa: E402
from tfxmed.models import build_model, declare_spec, model_spec  # noqa: E402
from tfxmed.models import layers as _registered  # noqa: E402,F401
from tfxmed.runs import RunPaths  # noqa: E402


def _inputs(count: int, size: int):
    examples = generate(SyntheticSpec(image_size=size, num_examples=count, difficulty=0.15), "test")
    images = (examples.images.astype("float32") / 255.0 - 0.5) / 0.25
    return images, np.eye(2, dtype="float32")[examples.labels]


def _xplique(model_path: str, images, maps, targets, steps: int) -> dict:
    python = os.environ.get("XPLIQUE_PYTHON")
    if not python:
        return {"error": "not run: set XPLIQUE_PYTHON to a Python with xplique installed "
                          "(xplique 2.0.2 pins tensorflow<=2.20)"}
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_xplique_metrics_peer.py")
    with tempfile.TemporaryDirectory() as folder:
        arrays = os.path.join(folder, "inputs.npz")
        np.savez(arrays, images=images, maps=maps, targets=targets)
        result = subprocess.run([python, script, model_path, arrays, str(steps)], capture_output=True, text=True,
                                timeout=3000)
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help="a .keras classifier (e.g. the demo's best checkpoint)")
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=16)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        if args.checkpoint:
            model_path, model = args.checkpoint, keras.saving.load_model(args.checkpoint)
            # A run's checkpoint (RUN/checkpoints/best.keras): its config says which layer Grad-CAM explains.
            config_path = RunPaths(os.path.dirname(os.path.dirname(os.path.abspath(args.checkpoint)))).config
            if os.path.exists(config_path):
                declare_spec(model, model_spec(load_config(config_path).model))
        else:
            model = build_model(ModelConfig(), (args.size, args.size, 1), 2, False)
            model_path = os.path.join(folder, "model.keras")
            model.save(model_path)
        size = int(model.inputs[0].shape[1])
        images, targets = _inputs(args.images, size)
        maps = np.asarray(GradCam(model, batch_size=64)(images, targets))
        forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        predict = lambda x: forward(x).numpy()  # noqa: E731

        deletion_insertion(predict, images[:4], maps[:4], targets[:4], args.steps)  # tracing is not timed
        ours = {}
        started = time.perf_counter()
        ours.update(deletion_insertion(predict, images, maps, targets, args.steps))
        ours["seconds_both"] = time.perf_counter() - started
        theirs = _xplique(model_path, images, maps, targets, args.steps)
        # Grad-CAM maps have many exact ties (ReLU zeros) that the two libraries order differently; with
        # the ties broken by a tiny jitter both rank the same pixels and the AUCs should agree.
        jittered = maps + 1e-6 * np.random.default_rng(0).random(maps.shape).astype(np.float32)
        ours_jittered = deletion_insertion(predict, images, jittered, targets, args.steps)
        theirs_jittered = _xplique(model_path, images, jittered, targets, args.steps)

    report = {"images": args.images, "size": size, "steps": args.steps, "checkpoint": args.checkpoint,
              "ours": ours, "xplique": theirs,
              "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(),
                          "tensorflow": tf.__version__}}
    if "error" not in theirs:
        their_seconds = theirs["deletion"]["seconds"] + theirs["insertion"]["seconds"]
        report["speedup_vs_xplique"] = their_seconds / ours["seconds_both"]
        report["abs_difference"] = {m: abs(ours[f"{m}_auc"] - theirs[m]["auc"]) for m in ("deletion", "insertion")}
        report["ties_broken"] = {"ours": ours_jittered,
                                 "xplique": {m: theirs_jittered[m]["auc"] for m in ("deletion", "insertion")},
                                 "abs_difference": {m: abs(ours_jittered[f"{m}_auc"] - theirs_jittered[m]["auc"])
                                                    for m in ("deletion", "insertion")}}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
