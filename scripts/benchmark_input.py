"""Input pipeline throughput, side by side in one run; prints JSON.

    python scripts/benchmark_input.py [--files 2000] [--source-size 256] [--size 64] [--batch 32]

On the same PNG files (synthetic chest images saved at `source-size` px in a class-per-folder tree):
1. conversion images/s (`tfrecords_tools` folder converter, in-process and with 2 workers);
2. tf.data read + decode + resize + augment + normalise + batch images/s (the training pipeline), and
   the same with `data.cache` from the second pass on (decoded images kept; augmentation still per pass);
3. a naive loader's images/s: the same augmentation list by hand, in one Python thread: PIL open,
   convert, crop-and-resize, rotate; NumPy flip, brightness, contrast, normalise; batched in Python;
4. how many images/s ResNet50 + CSAM (64 px, weights=None) consumes in training steps.
Ratios: tf.data ÷ naive (target ≥ 3) and tf.data ÷ training consumption (target ≥ 5).
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

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402


def _write_files(root: str, count: int, size: int) -> list[str]:
    from tfxmed.data.synthetic import SyntheticSpec, generate

    paths = []
    batch = generate(SyntheticSpec(image_size=size, num_examples=count, difficulty=0.3), "train")
    for i in range(count):
        folder = os.path.join(root, ["normal", "lesion"][int(batch.labels[i])])
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"{i:05d}.png")
        Image.fromarray(batch.images[i][..., 0]).save(path)
        paths.append(path)
    return paths


def _convert(root: str, out: str, workers: int) -> float:
    from tfrecords_tools.sources import convert_folder

    started = time.perf_counter()
    count = sum(convert_folder(root, out, shard_examples=256, salt="benchmark", workers=workers))
    return count / (time.perf_counter() - started)


def _tf_data(out: str, size: int, batch: int, cache: bool = False) -> float:
    from tfxmed.config import DataConfig
    from tfxmed.data import pipeline
    from tfxmed.storage import load_manifest

    manifest = load_manifest(out)
    config = DataConfig(image_size=size, batch_size=batch, shuffle_buffer=1024, cache=cache)
    dataset = pipeline.to_keras(pipeline.build_dataset(out, manifest, "train", config, True, batch)).repeat()
    iterator = iter(dataset)
    # Warm-up: tracing and the first buffers; with the cache, one whole pass fills it (epoch 2 onwards).
    warm = manifest["splits"]["train"]["count"] // batch + 2 if cache else 5
    for _ in range(warm):
        next(iterator)
    steps = 100
    started = time.perf_counter()
    for _ in range(steps):
        next(iterator)
    return steps * batch / (time.perf_counter() - started)


def _naive(paths: list[str], size: int, batch: int, count: int) -> float:
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    done = 0
    while done < count:
        images = []
        for path in paths[done % len(paths):][:batch]:
            with Image.open(path) as image:
                grey = image.convert("L")
                width, height = grey.size
                keep = 1.0 - rng.uniform(0.0, 0.1)  # the same list as the pipeline: crop ≤10%, rotation ±15°, ...
                crop_w, crop_h = int(width * keep), int(height * keep)
                left, top = int(rng.integers(0, width - crop_w + 1)), int(rng.integers(0, height - crop_h + 1))
                grey = grey.resize((size, size), Image.BILINEAR, box=(left, top, left + crop_w, top + crop_h))
                grey = grey.rotate(float(rng.uniform(-15.0, 15.0)), resample=Image.BILINEAR)
                pixels = np.asarray(grey, np.float32) / 255.0
            if rng.random() < 0.5:
                pixels = pixels[:, ::-1]
            pixels = pixels + rng.uniform(-0.2, 0.2)
            mean = pixels.mean()
            pixels = (pixels - mean) * rng.uniform(0.8, 1.2) + mean
            images.append((pixels - 0.5) / 0.25)
        np.stack(images)[..., None]
        done += len(images)
    return done / (time.perf_counter() - started)


def _training_rate(size: int, batch: int) -> float:
    import keras

    from tfxmed.config import Experiment
    from tfxmed.models import build_model
    from tfxmed.training.loop import compile_model

    config = Experiment()
    model = build_model(config.model, (size, size, 1), 2, False)
    compile_model(model, config, {"num_classes": 2, "multi_label": False}, steps_per_epoch=100)
    images = np.random.default_rng(0).normal(size=(batch, size, size, 1)).astype("float32")
    labels = keras.utils.to_categorical(np.arange(batch) % 2, 2)
    for _ in range(2):
        model.train_on_batch(images, labels)
    steps = 5
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, labels)
    return steps * batch / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--source-size", type=int, default=256)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        paths = _write_files(os.path.join(folder, "tree"), args.files, args.source_size)
        serial = _convert(os.path.join(folder, "tree"), os.path.join(folder, "serial"), 0)
        parallel = _convert(os.path.join(folder, "tree"), os.path.join(folder, "parallel"), 2)
        tf_data = _tf_data(os.path.join(folder, "serial"), args.size, args.batch)
        cached = _tf_data(os.path.join(folder, "serial"), args.size, args.batch, cache=True)
        naive = _naive(paths, args.size, args.batch, min(args.files, 1600))
    training = _training_rate(args.size, args.batch)
    print(json.dumps({
        "files": args.files, "source_px": args.source_size, "train_px": args.size, "batch": args.batch,
        "conversion_images_per_s": {"in_process": serial, "workers_2": parallel},
        "tf_data_images_per_s": tf_data, "tf_data_cached_images_per_s": cached, "naive_pil_numpy_images_per_s": naive,
        "resnet50_training_consumes_images_per_s": training,
        "ratios": {"tf_data_vs_naive": tf_data / naive, "tf_data_cached_vs_naive": cached / naive,
                   "tf_data_vs_training": tf_data / training},
        "targets_met": {"tf_data_vs_naive_ge_3": tf_data / naive >= 3,
                        "tf_data_cached_vs_naive_ge_3": cached / naive >= 3,
                        "tf_data_vs_training_ge_5": tf_data / training >= 5},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "tensorflow": tf.__version__},
    }, indent=2))


if __name__ == "__main__":
    main()
