"""Device benchmark for when a GPU or TPU machine is available; prints JSON.

ResNet50 + CSAM (weights=None, 2 classes, 224 px RGB by default) on random images, in float32 and in
mixed precision (mixed_float16 on a GPU, mixed_bfloat16 on CPU and TPU): training images/s (Keras `fit`
on an in-memory dataset, after the first step), Grad-CAM and Integrated Gradients images/s (the
explainers' compiled batches, after the first call), and the time to the first training step (model
build, trace and compile, one step). NVIDIA's published ResNet-50 training figure is printed beside
them as a reference, not as a measurement of this machine.

    python scripts/benchmark_device.py                       # 224 px, batch 64 (GPU/TPU)
    python scripts/benchmark_device.py --strategy tpu --tpu local
    python scripts/benchmark_device.py --quick               # tiny sizes, a few steps (CPU; the test runs it)
"""

from __future__ import annotations

import argparse
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

from tfxmed.config import ModelConfig, ResNetAttentionConfig  # noqa: E402
from tfxmed.distribute import make_strategy  # noqa: E402
from tfxmed.explain import make_explainer  # noqa: E402
from tfxmed.models import build_model  # noqa: E402

# NVIDIA Deep Learning Examples, TensorFlow ResNet-50 v1.5, training throughput on 1x A100 80GB with AMP
# (mixed precision), batch 256: about 1,770 images/s (NVIDIA's published performance table).
REFERENCE = {"source": "NVIDIA DeepLearningExamples TensorFlow ResNet-50 v1.5 training, 1x A100, AMP",
             "images_per_second": 1770.0}


def _images(count: int, size: int, channels: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.eye(2, dtype=np.float32)[rng.integers(0, 2, count)]
    return rng.random((count, size, size, channels), dtype=np.float32), labels


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def run_precision(precision: str, args, strategy) -> dict:
    """One precision's figures: build, first step, training and explanation throughput."""
    keras.mixed_precision.set_global_policy(precision)
    try:
        keras.utils.set_random_seed(0)
        config = ModelConfig(name="resnet50_attention", dropout=0.0,
                             resnet50_attention=ResNetAttentionConfig(blocks=args.blocks, width=args.width))
        images, labels = _images(args.batch * 2, args.size, 3)
        data = tf.data.Dataset.from_tensor_slices((images, labels)).repeat().batch(args.batch, drop_remainder=True)
        start = time.perf_counter()
        with strategy.scope():
            model = build_model(config, (args.size, args.size, 3), 2, False)
            model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="categorical_crossentropy")
        model.fit(data, steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)
        first_step = time.perf_counter() - start
        train = _timed(lambda: model.fit(data, steps_per_epoch=args.steps, epochs=1, verbose=0, shuffle=False))
        figures = {"first_step_seconds": first_step,
                   "train_images_per_second": args.steps * args.batch / train}
        batch, targets = images[: args.explain_batch], labels[: args.explain_batch].argmax(-1)
        explain_precision = "float32" if precision == "float32" else precision.removeprefix("mixed_")
        for name, options in (("gradcam", {}), ("ig", {"steps": args.ig_steps})):
            explainer = make_explainer(name, model, batch_size=args.explain_batch * (options.get("steps", 0) + 1),
                                       precision=explain_precision, **options)
            explainer(batch, targets)  # trace and compile
            seconds = _timed(lambda e=explainer: [e(batch, targets) for _ in range(args.explain_repeats)])
            figures[f"{name}_images_per_second"] = args.explain_repeats * len(batch) / seconds
        return figures
    finally:
        keras.mixed_precision.set_global_policy("float32")


def benchmark(args) -> dict:
    strategy = make_strategy(args.strategy, args.tpu)
    gpu = bool(tf.config.list_physical_devices("GPU"))
    mixed = "mixed_float16" if gpu and args.strategy != "tpu" else "mixed_bfloat16"
    results = {precision: run_precision(precision, args, strategy) for precision in ("float32", mixed)}
    return {
        "model": f"resnet50_attention blocks={args.blocks} width={args.width}", "image_size": args.size,
        "batch_size": args.batch, "train_steps": args.steps, "ig_steps": args.ig_steps, "quick": args.quick,
        "strategy": args.strategy, "replicas": strategy.num_replicas_in_sync,
        "device": "tpu" if args.strategy == "tpu" else ("gpu" if gpu else "cpu"),
        "machine": platform.machine(), "tensorflow": tf.__version__, "keras": keras.__version__,
        "mixed_precision_policy": mixed, "results": results, "reference": REFERENCE,
    }


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny model and sizes, a few steps (CPU tests)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64, help="global training batch")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--ig-steps", type=int, default=16)
    parser.add_argument("--explain-batch", type=int, default=16)
    parser.add_argument("--explain-repeats", type=int, default=5)
    parser.add_argument("--strategy", default="cpu", help="cpu | gpu | mirrored | tpu (tfxmed.distribute)")
    parser.add_argument("--tpu", default="", help="TPU name, grpc:// address or 'local' with --strategy tpu")
    args = parser.parse_args(argv)
    args.blocks, args.width = [3, 4, 6, 3], 64
    if args.quick:
        args.size, args.batch, args.steps, args.ig_steps = 32, 4, 2, 2
        args.explain_batch, args.explain_repeats, args.blocks, args.width = 2, 1, [1, 1, 1, 1], 8
    return args


if __name__ == "__main__":
    print(json.dumps(benchmark(parse()), indent=2))
