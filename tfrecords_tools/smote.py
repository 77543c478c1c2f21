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

import numpy as np

from tfrecords_tools.generated import append_generated, training_pixels
from tfxmed.storage import load_manifest

__all__ = ["add_smote"]


def add_smote(data_dir: str, size: int = 64, k_neighbors: int = 5, seed: int = 42, shard_examples: int = 1024) -> dict:
    """Balances the training split of a converted folder with SMOTE; returns the manifest's `smote` entry."""
    from imblearn.over_sampling import SMOTE

    manifest = load_manifest(data_dir)
    if manifest["multi_label"]:
        raise ValueError(f"{data_dir}: SMOTE needs single-label classes; this dataset is multi-label")
    if manifest.get("smote"):
        raise ValueError(f"{data_dir}: SMOTE was already applied ({manifest['smote']['added']} samples)")
    pixels, labels = training_pixels(data_dir, manifest, size)
    counts = np.bincount(labels, minlength=manifest["num_classes"])
    smallest = int(counts[counts > 0].min())
    if smallest < 2:
        raise ValueError(f"{data_dir}: SMOTE needs at least 2 training images per class; "
                         f"the smallest class has {smallest}")
    sampler = SMOTE(k_neighbors=min(k_neighbors, smallest - 1), random_state=seed)
    resampled, resampled_labels = sampler.fit_resample(pixels, labels)
    new_pixels, new_labels = resampled[len(pixels):], resampled_labels[len(pixels):]
    images = np.clip(np.round(new_pixels), 0, 255).astype(np.uint8).reshape(-1, size, size, manifest["channels"])
    return append_generated(data_dir, manifest, "smote", images, new_labels,
                            {"size": size, "k_neighbors": int(sampler.k_neighbors), "space": "downsampled pixels",
                             "seed": seed}, shard_examples)
