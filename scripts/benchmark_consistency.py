"""Cost of the explanation-consistency train step, side by side in one run; prints JSON.

ResNet50+CSAM (weights=None, default 64 px, batch 16) on synthetic images: seconds per training
step of the plain classifier and of `ExplanationConsistencyModel` variants, and each one's ratio to
the plain step. `naive` differentiates through 8-step IG on the whole batch; `default` is
`ConsistencyConfig()`; the rest isolate one cheapening option each.

    python scripts/benchmark_consistency.py [--size 64] [--steps 6] [--model small_cnn]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfxmed.config import ConsistencyConfig, ModelConfig, SmallCnnConfig  # noqa: E402
from tfxmed.data.synthetic import SyntheticSpec, generate  # noqa: E402
from tfxmed.models import build_model  # noqa: E402
from tfxmed.training.consistency import ExplanationConsistencyModel  # noqa: E402

DEFAULT = ConsistencyConfig()
VARIANTS = {
    "naive": dict(ig_steps=8, ig_fraction=1.0, ig_gradient=True, every=1),
    "stop_gradient": dict(ig_steps=8, ig_fraction=1.0, ig_gradient=False, every=1),
    "stop_gradient_quarter_batch": dict(ig_steps=8, ig_fraction=0.25, ig_gradient=False, every=1),
    "stop_gradient_4_steps": dict(ig_steps=4, ig_fraction=1.0, ig_gradient=False, every=1),
    "stop_gradient_every_4": dict(ig_steps=8, ig_fraction=1.0, ig_gradient=False, every=4),
    "default": dict(ig_steps=DEFAULT.ig_steps, ig_fraction=DEFAULT.ig_fraction, ig_gradient=DEFAULT.ig_gradient,
                    every=DEFAULT.every),
}


def _seconds_per_step(model: keras.Model, images: np.ndarray, labels: np.ndarray, steps: int) -> float:
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=keras.losses.CategoricalCrossentropy())
    for _ in range(2):  # tracing and the first executions are not counted
        model.train_on_batch(images, labels)
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, labels)
    return (time.perf_counter() - started) / steps


def _measure(args) -> dict:
    keras.utils.set_random_seed(0)
    examples = generate(SyntheticSpec(image_size=args.size, num_examples=args.batch, difficulty=0.15), "train")
    images = (examples.images.astype("float32") / 255.0 - 0.5) / 0.25
    labels = np.eye(2, dtype="float32")[examples.labels]
    small = ModelConfig(name="small_cnn", small_cnn=SmallCnnConfig(width=16, blocks=[2, 2, 2]))
    config = ModelConfig() if args.model == "resnet50_attention" else small
    shape = (args.size, args.size, 1)
    plain = _seconds_per_step(build_model(config, shape, 2, False), images, labels, args.steps)
    report = {
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(), "tensorflow": tf.__version__,
                    "keras": keras.__version__},
        "model": args.model, "image_size": args.size, "batch": args.batch, "timed_steps": args.steps,
        "plain_seconds_per_step": plain, "variants": {},
    }
    for name, options in VARIANTS.items():
        model = ExplanationConsistencyModel(build_model(config, shape, 2, False), **options)
        seconds = _seconds_per_step(model, images, labels, args.steps)
        report["variants"][name] = {"options": options, "seconds_per_step": seconds, "ratio_to_plain": seconds / plain}
        print(json.dumps({name: report["variants"][name]}), file=sys.stderr, flush=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet50_attention", choices=["resnet50_attention", "small_cnn"])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    with contextlib.redirect_stdout(sys.stderr):
        report = _measure(args)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
