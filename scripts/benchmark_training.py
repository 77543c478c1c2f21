"""Training throughput against the limit of this machine, in float32 and bfloat16; prints JSON.

For the quick-start model (configs/quickstart.yaml's ResNet50 + CSAM at its image size and batch), three
measurements side by side, each after its warm-up steps:

- `limit`: a bare fwd+bwd+update step (`tf.GradientTape` + Adam in one `tf.function`) on one batch
  already in memory: what the model costs here, with no input pipeline and no Keras loop;
- `keras_fit_in_memory`: Keras `fit` on the same batch repeated (the Keras loop's own cost);
- `tfxmed_train`: `tfxmed.training.train` itself, reading the converted TFRecords through the tf.data
  pipeline with augmentation (the quick start's consistency loss off, so the same model is measured).

`train_fraction_of_limit` = tfxmed_train / limit. Each measurement is repeated in float32 and under
Keras' `mixed_bfloat16` policy (variables float32, compute bfloat16; this CPU has AVX512-BF16), and
`bfloat16_speedup` compares them.

    python scripts/benchmark_training.py [--steps 12] [--config configs/quickstart.yaml]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfxmed.config import load_config  # noqa: E402
from tfxmed.models import build_model  # noqa: E402

WARMUP = 2


class _BatchClock(keras.callbacks.Callback):
    """Training images/s between the end of the warm-up batches and the end of the last batch."""

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size, self.ends = batch_size, []

    def on_train_batch_end(self, batch, logs=None):
        if logs and "loss" in logs:
            float(logs["loss"])  # waits for the step: TensorFlow may still be running it asynchronously
        self.ends.append(time.perf_counter())

    def images_per_second(self) -> float:
        timed = self.ends[WARMUP - 1:]
        return (len(timed) - 1) * self.batch_size / (timed[-1] - timed[0])


def _batch(config, channels: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    size, batch = config.data.image_size, config.data.batch_size
    images = rng.random((batch, size, size, channels), dtype=np.float32)
    labels = np.eye(2, dtype=np.float32)[rng.integers(0, 2, batch)]
    return tf.constant(images), tf.constant(labels)


def limit(config, steps: int) -> float:
    """A bare compiled fwd+bwd+Adam step on one in-memory batch, images/s."""
    images, labels = _batch(config, 1)
    model = build_model(config.model, tuple(images.shape[1:]), 2, False)
    optimizer = keras.optimizers.Adam(1e-4)
    loss_fn = keras.losses.CategoricalCrossentropy()

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
            scaled = optimizer.scale_loss(loss)
        optimizer.apply(tape.gradient(scaled, model.trainable_variables), model.trainable_variables)
        return loss

    for _ in range(WARMUP):
        step(images, labels).numpy()
    started = time.perf_counter()
    for _ in range(steps):
        loss = step(images, labels)
    loss.numpy()
    return steps * int(images.shape[0]) / (time.perf_counter() - started)


def keras_fit_in_memory(config, steps: int) -> float:
    images, labels = _batch(config, 1)
    model = build_model(config.model, tuple(images.shape[1:]), 2, False)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=keras.losses.CategoricalCrossentropy())
    clock = _BatchClock(int(images.shape[0]))
    data = tf.data.Dataset.from_tensors((images, labels)).repeat()
    model.fit(data, epochs=1, steps_per_epoch=steps + WARMUP, callbacks=[clock], verbose=0)
    return clock.images_per_second()


def tfxmed_train(config_path: str, steps: int, mixed: bool) -> float:
    from tfxmed.distribute import make_strategy
    from tfxmed.training import train

    with tempfile.TemporaryDirectory() as run_dir:
        config = load_config(config_path, [
            "train.epochs=1", f"train.steps_per_epoch={steps + WARMUP}", "train.min_steps=0",
            "train.tensorboard_images=0", "train.consistency.enabled=false", f"runtime.run_dir={run_dir}",
            f"runtime.mixed_precision={'true' if mixed else 'false'}"])
        clock = _BatchClock(config.data.batch_size)
        train(config, make_strategy("cpu"), extra_callbacks=[clock], verbose=0)
        return clock.images_per_second()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/quickstart.yaml")
    parser.add_argument("--steps", type=int, default=12, help="timed steps per measurement (after warm-up)")
    args = parser.parse_args()
    config = load_config(args.config)
    rows = {}
    for precision in ("float32", "bfloat16"):
        keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
        row = {"limit": limit(config, args.steps), "keras_fit_in_memory": keras_fit_in_memory(config, args.steps),
               "tfxmed_train": tfxmed_train(args.config, args.steps, precision == "bfloat16")}
        row["train_fraction_of_limit"] = row["tfxmed_train"] / row["limit"]
        rows[precision] = row
        keras.mixed_precision.set_global_policy("float32")
    print(json.dumps({
        "model": f"{config.model.name} (configs: {args.config}), {config.data.image_size} px, batch "
                 f"{config.data.batch_size}", "steps": args.steps, "images_per_second": rows,
        "bfloat16_speedup": {key: rows["bfloat16"][key] / rows["float32"][key]
                             for key in ("limit", "keras_fit_in_memory", "tfxmed_train")},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "tensorflow": tf.__version__},
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
