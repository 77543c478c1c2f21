"""What a split reads from a converted folder: its shards, its k-fold part, its class weights and μ/σ.

Shared by the image pipeline (`tfxmed.data.pipeline`) and the volume pipeline
(`tfxmed.data.volume_pipeline`), which read the same manifest and the same id keys.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from tfxmed.config import DataConfig
from tfxmed.data import features

__all__ = ["class_weights", "normalize", "record_fold", "split_files", "fold_filter"]


def class_weights(manifest: dict) -> np.ndarray:
    """Balanced class weights N / (K · n_c) from the training split's class counts."""
    counts = np.array([manifest["splits"]["train"]["class_counts"][n] for n in manifest["class_names"]], float)
    return counts.sum() / (len(counts) * np.maximum(counts, 1.0))


def normalize(image: tf.Tensor, manifest: dict) -> tf.Tensor:
    """Standardises a [0, 1] image with the training split's pixel μ/σ from the manifest."""
    mean = tf.constant(manifest["pixel_mean"], tf.float32)
    std = tf.constant(manifest["pixel_std"], tf.float32)
    return (image - mean) / tf.maximum(std, 1e-6)


def _shard_files(data_dir: str, manifest: dict, split: str) -> list[str]:
    if split not in manifest["splits"]:
        raise ValueError(f"split '{split}' not in {data_dir}/manifest.json; have {list(manifest['splits'])}")
    return [os.path.join(data_dir, shard["file"]) for shard in manifest["splits"][split]["shards"]]


def record_fold(example: dict, folds: int) -> tf.Tensor:
    """The record's stored fold, else a stable hash of its patient (or, without one, source) id."""
    key = tf.where(tf.strings.length(example["patient"]) > 0, example["patient"], example["source"])
    hashed = tf.strings.to_hash_bucket_fast(key, folds)
    return tf.where(example["fold"] >= 0, example["fold"] % folds, hashed)


def split_files(data_dir: str, manifest: dict, split: str, config: DataConfig) -> list[str]:
    """Shards read for `split`; under k-fold, "train" and "val" both read the pooled train+val shards."""
    if config.cv_folds > 0 and split in ("train", "val"):
        return [f for name in ("train", "val") if name in manifest["splits"]
                for f in _shard_files(data_dir, manifest, name)]
    return _shard_files(data_dir, manifest, split)


def fold_filter(config: DataConfig, split: str, num_classes: int):
    """Under k-fold (`data.cv_folds`), the predicate on serialized records that keeps `split`'s fold of the pooled
    train+val records ("val": fold `cv_fold`, "train": the others); None without k-fold or for "test".
    Conversion-time samples never validate (the pipelines refuse k-fold on SMOTE or GAN folders anyway). Only
    the id keys are parsed (the same keys in image and volume records), so filtering decodes nothing."""
    if not (config.cv_folds > 0 and split in ("train", "val")):
        return None
    if not 0 <= config.cv_fold < config.cv_folds:
        raise ValueError(f"data.cv_fold must be in [0, {config.cv_folds}) when data.cv_folds is set; "
                         f"got {config.cv_fold}")
    keep_fold = split == "val"
    spec = features.feature_spec(num_classes, [features.PATIENT, features.SOURCE, features.FOLD, features.SYNTHETIC])

    def in_split(serialized):
        keys = tf.io.parse_single_example(serialized, spec)
        example = {"patient": keys[features.PATIENT], "source": keys[features.SOURCE], "fold": keys[features.FOLD]}
        in_fold = tf.equal(record_fold(example, config.cv_folds), config.cv_fold)
        if keep_fold:
            return in_fold & tf.equal(keys[features.SYNTHETIC], 0)
        return tf.logical_not(in_fold)

    return in_split
