"""Training images made at conversion time (SMOTE, the conditional GAN): read the real training split, and
append generated samples to it in shards of their own.

Generated samples are flagged (`sample/synthetic = 1`) with no mask and no patient, written into
`train-<kind>-NNNNN.tfrecord` shards listed under the training split only: they never reach validation
or test, the pipeline keeps them out of k-fold validation folds, and the manifest's μ/σ (computed from
the real images at conversion) stay as they were.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from tfxmed.data import features
from tfxmed.errors import Refusal
from tfxmed.storage import MANIFEST_NAME, atomic_path, file_sha256, write_json_atomic

__all__ = ["training_pixels", "append_generated"]


def training_pixels(data_dir: str, manifest: dict, size: int, real_only: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The training split's images at `size`×`size` (area resizing), flattened float64 [N, size²·C], and
    their class indices [N]; with `real_only`, samples generated earlier are left out. 2-D images only."""
    if manifest.get("kind") == "volume":
        raise Refusal(f"{data_dir}: holds volumes; SMOTE and the GAN generate 2-D images")
    files = [os.path.join(data_dir, shard["file"]) for shard in manifest["splits"]["train"]["shards"]]
    images, labels = [], []
    for raw in tf.data.TFRecordDataset(files):
        example = features.parse(raw, manifest["num_classes"], manifest["channels"])
        if real_only and int(example["synthetic"]):
            continue
        small = tf.image.resize(tf.cast(example["image"], tf.float32), [size, size], method="area")
        images.append(small.numpy().reshape(-1))
        labels.append(int(example["label_index"]))
    return np.array(images, np.float64), np.array(labels)


def append_generated(data_dir: str, manifest: dict, kind: str, images: np.ndarray, labels: np.ndarray,
                     entry: dict, shard_examples: int = 1024) -> dict:
    """Writes uint8 `images` [N, H, W, C] with class indices `labels` as flagged training records in
    `train-<kind>-NNNNN.tfrecord` shards, updates the training split's counts and records `entry` as
    `manifest[kind]` (with `added` and `per_class`); returns that entry. Each shard is written atomically."""
    names = manifest["class_names"]
    train = manifest["splits"]["train"]
    for start in range(0, len(images), shard_examples):
        name = f"train-{kind}-{start // shard_examples:05d}.tfrecord"
        final = os.path.join(data_dir, name)
        with atomic_path(final) as temporary, tf.io.TFRecordWriter(temporary) as writer:
            for offset, (image, label) in enumerate(zip(images[start:start + shard_examples],
                                                        labels[start:start + shard_examples])):
                writer.write(features.serialize(features.RecordFields(
                    image=np.asarray(image, np.uint8), label_vector=np.eye(len(names), dtype=np.float32)[label],
                    label_index=int(label), source_id=f"{kind}/{start + offset}", split="train", synthetic=True,
                    encoding=manifest.get("encoding", "png"))))
        count = min(shard_examples, len(images) - start)
        train["shards"].append({"file": name, "count": count, "sha256": file_sha256(final)})
    train["count"] += len(images)
    added = np.bincount(np.asarray(labels, int), minlength=len(names))
    train["class_counts"] = {n: int(train["class_counts"][n] + a) for n, a in zip(names, added)}
    manifest[kind] = {"added": int(len(images)), "per_class": dict(zip(names, added.tolist())), **entry}
    write_json_atomic(manifest, os.path.join(data_dir, MANIFEST_NAME))
    return manifest[kind]
