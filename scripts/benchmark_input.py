"""Input pipeline throughput, side by side in one run, per record encoding and image size; prints JSON.

    python scripts/benchmark_input.py [--files 1000] [--sizes 64,224] [--encodings png,raw] [--batch 32]

For each size S (64 and 224 px by default), on the same PNG files (synthetic chest images saved at S px in a
class-per-folder tree, converted once per record encoding, in process):
1. conversion images/s and bytes per record of each encoding (`--encoding png|raw`);
2. tf.data read + parse/decode + resize + augment + normalise + batch images/s (the training pipeline) on a
   first pass (nothing cached: every image is read and decoded), and with `data.cache` from the second pass
   on (decoded images kept; augmentation still every pass);
3. a naive loader's images/s: the same augmentation list by hand, in one Python thread: PIL open,
   convert, crop-and-resize, rotate; NumPy flip, brightness, contrast, normalise; batched in Python;
4. how many images/s the quick-start model (configs/quickstart.yaml: ResNet50 + CSAM, half width, no stem
   pool, consistency loss on) consumes in training steps at S px, batch 16 (its configured batch).
Ratios per size and encoding: tf.data first pass ÷ naive (target ≥ 3) and ÷ training consumption (≥ 5).
Other jobs may share the CPU: the run is kept short (--files, --steps), the loaders are measured in interleaved
rounds and each keeps its best round (--rounds), and the figures still move with the load.
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
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

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


def _convert(root: str, out: str, encoding: str) -> tuple[float, float]:
    """(images/s, mean bytes per record) of converting the tree with `encoding`."""
    from tfrecords_tools.sources import convert_folder
    from tfxmed.storage import load_manifest

    started = time.perf_counter()
    count = sum(convert_folder(root, out, shard_examples=256, salt="benchmark", encoding=encoding))
    rate = count / (time.perf_counter() - started)
    manifest = load_manifest(out)
    files = [s["file"] for split in manifest["splits"].values() for s in split["shards"]]
    return rate, sum(os.path.getsize(os.path.join(out, f)) for f in files) / count


def _tf_data(out: str, size: int, batch: int, steps: int, cache: bool = False) -> float:
    from tfxmed.config import DataConfig
    from tfxmed.data import pipeline
    from tfxmed.storage import load_manifest

    manifest = load_manifest(out)
    config = DataConfig(image_size=size, batch_size=batch, shuffle_buffer=1024, cache=cache)
    dataset = pipeline.to_keras(pipeline.build_dataset(out, manifest, "train", config, True, batch, masks=False))
    dataset = dataset.repeat()
    iterator = iter(dataset)
    # Warm-up: tracing and the first buffers; with the cache, one whole pass fills it (epoch 2 onwards).
    warm = manifest["splits"]["train"]["count"] // batch + 2 if cache else 5
    for _ in range(warm):
        next(iterator)
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


def _training_rate(size: int, steps: int) -> tuple[float, int]:
    """(images/s, batch) of the quick-start model's train step (consistency loss included) at `size` px."""
    import keras

    from tfxmed.config import load_config
    from tfxmed.models import build_model
    from tfxmed.training.loop import _with_consistency, compile_model

    config = load_config(os.path.join(REPO, "configs", "quickstart.yaml"))
    batch = config.data.batch_size
    keras.utils.set_random_seed(0)
    classifier = build_model(config.model, (size, size, 1), 2, False)
    model = _with_consistency(classifier, config)
    compile_model(model, config, {"num_classes": 2, "multi_label": False}, steps_per_epoch=100)
    images = np.random.default_rng(0).normal(size=(batch, size, size, 1)).astype("float32")
    labels = keras.utils.to_categorical(np.arange(batch) % 2, 2)
    for _ in range(2):  # tracing, then one untimed step
        model.train_on_batch(images, labels)
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, labels)
    return steps * batch / (time.perf_counter() - started), batch


def _measure_size(folder: str, size: int, args: argparse.Namespace) -> dict:
    """Every rate of one size, each the best of `args.rounds` interleaved rounds (other jobs' load comes and goes:
    interleaving exposes every loader to the same load, the best round is the one least disturbed)."""
    files = args.files if size <= 64 else max(args.files // 2, 4 * args.batch)
    tree = os.path.join(folder, f"tree{size}")
    paths = _write_files(tree, files, size)
    converted = {encoding: _convert(tree, os.path.join(folder, f"{encoding}{size}"), encoding)
                 for encoding in args.encodings}
    best: dict[str, float] = {}

    def keep(name: str, value: float) -> None:
        best[name] = max(best.get(name, 0.0), value)

    for _ in range(args.rounds):
        keep("naive", _naive(paths, size, args.batch, min(files, 800)))
        for encoding in args.encodings:
            out = os.path.join(folder, f"{encoding}{size}")
            keep(f"{encoding}/first", _tf_data(out, size, args.batch, args.steps))
            keep(f"{encoding}/cached", _tf_data(out, size, args.batch, args.steps, cache=True))
    training, train_batch = _training_rate(size, args.train_steps)
    naive = best["naive"]
    result: dict = {"files": files, "px": size, "batch": args.batch, "rounds": args.rounds, "encodings": {}}
    for encoding, (conversion, record_bytes) in converted.items():
        first, cached = best[f"{encoding}/first"], best[f"{encoding}/cached"]
        result["encodings"][encoding] = {
            "conversion_images_per_s": conversion, "bytes_per_record": record_bytes,
            "tf_data_first_pass_images_per_s": first, "tf_data_cached_images_per_s": cached,
            "ratios": {"first_pass_vs_naive": first / naive, "cached_vs_naive": cached / naive,
                       "first_pass_vs_training": first / training},
            "targets_met": {"first_pass_vs_naive_ge_3": first / naive >= 3,
                            "first_pass_vs_training_ge_5": first / training >= 5},
        }
    result.update(naive_pil_numpy_images_per_s=naive, quickstart_training_consumes_images_per_s=training,
                  training_batch=train_batch)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000, help="PNG files at 64 px (half as many above)")
    parser.add_argument("--sizes", default="64,224")
    parser.add_argument("--encodings", default="png,raw")
    parser.add_argument("--batch", type=int, default=32, help="tf.data and naive loader batch")
    parser.add_argument("--steps", type=int, default=40, help="timed tf.data batches per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; each rate is the best round's")
    parser.add_argument("--train-steps", type=int, default=2, help="timed training steps per size")
    args = parser.parse_args()
    args.encodings = [e.strip() for e in args.encodings.split(",") if e.strip()]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        sizes = {f"{size}px": _measure_size(folder, size, args) for size in (int(s) for s in args.sizes.split(","))}
    print(json.dumps({
        "sizes": sizes,
        "seconds": time.perf_counter() - started,
        "load_average_at_end": os.getloadavg(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "tensorflow": tf.__version__},
    }, indent=2))


if __name__ == "__main__":
    main()
