"""SMOTE at conversion time (imbalanced-learn): synthetic minority training images, flagged in the record.

Interpolation happens on **downsampled pixels** (each training image resized to `size`×`size`, area
averaging), not on backbone embeddings: the records must hold images the tf.data pipeline can decode
and augment, and an embedding cannot be turned back into one; nor is there a trained backbone at
conversion time. A synthetic sample is x_i + λ(x_nn − x_i) with λ ~ U(0, 1) and x_nn one of the k
nearest same-class neighbours (Chawla et al., 2002). Samples are written at `size` px (the pipeline
resizes every record anyway) into extra `train-smote-NNNNN.tfrecord` shards, with `sample/synthetic = 1`,
no mask and no patient; they are excluded from the manifest's μ/σ and from k-fold validation folds.
Applies to single-label data; running it twice is refused.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from tfxmed.data import features
from tfxmed.storage import MANIFEST_NAME, atomic_path, file_sha256, load_manifest, write_json_atomic

__all__ = ["add_smote"]


def _training_pixels(data_dir: str, manifest: dict, size: int) -> tuple[np.ndarray, np.ndarray]:
    files = [os.path.join(data_dir, shard["file"]) for shard in manifest["splits"]["train"]["shards"]]
    images, labels = [], []
    for raw in tf.data.TFRecordDataset(files):
        example = features.parse(raw, manifest["num_classes"], manifest["channels"])
        small = tf.image.resize(tf.cast(example["image"], tf.float32), [size, size], method="area")
        images.append(small.numpy().reshape(-1))
        labels.append(int(example["label_index"]))
    return np.array(images, np.float64), np.array(labels)


def add_smote(data_dir: str, size: int = 64, k_neighbors: int = 5, seed: int = 42, shard_examples: int = 1024) -> dict:
    """Balances the training split of a converted folder with SMOTE; returns the manifest's `smote` entry."""
    from imblearn.over_sampling import SMOTE

    manifest = load_manifest(data_dir)
    if manifest["multi_label"]:
        raise ValueError(f"{data_dir}: SMOTE needs single-label classes; this dataset is multi-label")
    if manifest.get("smote"):
        raise ValueError(f"{data_dir}: SMOTE was already applied ({manifest['smote']['added']} samples)")
    pixels, labels = _training_pixels(data_dir, manifest, size)
    counts = np.bincount(labels, minlength=manifest["num_classes"])
    smallest = int(counts[counts > 0].min())
    if smallest < 2:
        raise ValueError(f"{data_dir}: SMOTE needs at least 2 training images per class; "
                         f"the smallest class has {smallest}")
    sampler = SMOTE(k_neighbors=min(k_neighbors, smallest - 1), random_state=seed)
    resampled, resampled_labels = sampler.fit_resample(pixels, labels)
    new_pixels, new_labels = resampled[len(pixels):], resampled_labels[len(pixels):]
    channels, names = manifest["channels"], manifest["class_names"]
    train = manifest["splits"]["train"]
    for start in range(0, len(new_pixels), shard_examples):
        name = f"train-smote-{start // shard_examples:05d}.tfrecord"
        final = os.path.join(data_dir, name)
        with atomic_path(final) as temporary, tf.io.TFRecordWriter(temporary) as writer:
            for offset, (vector, label) in enumerate(zip(new_pixels[start:start + shard_examples],
                                                         new_labels[start:start + shard_examples])):
                image = np.clip(np.round(vector), 0, 255).astype(np.uint8).reshape(size, size, channels)
                writer.write(features.serialize(features.RecordFields(
                    image=image, label_vector=np.eye(len(names), dtype=np.float32)[label], label_index=int(label),
                    source_id=f"smote/{start + offset}", split="train", synthetic=True,
                    encoding=manifest.get("encoding", "png"))))
        count = min(shard_examples, len(new_pixels) - start)
        train["shards"].append({"file": name, "count": count, "sha256": file_sha256(final)})
    train["count"] += len(new_pixels)
    added = np.bincount(new_labels, minlength=len(names))
    train["class_counts"] = {n: int(train["class_counts"][n] + a) for n, a in zip(names, added)}
    manifest["smote"] = {"added": int(len(new_pixels)), "per_class": dict(zip(names, added.tolist())), "size": size,
                         "k_neighbors": int(sampler.k_neighbors), "space": "downsampled pixels", "seed": seed}
    write_json_atomic(manifest, os.path.join(data_dir, MANIFEST_NAME))
    return manifest["smote"]
