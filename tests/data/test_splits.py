"""What a split reads (shared by the image and volume pipelines): shards, k-fold parts, class weights, μ/σ."""

import numpy as np
import pytest
import tensorflow as tf

from tfrecords_tools.volumes import convert_synthetic_volumes
from tfxmed.config import load_config
from tfxmed.data.splits import class_weights, fold_filter, normalize, split_files
from tfxmed.data.volume_features import parse_volume
from tfxmed.storage import load_manifest


def test_k_fold_parts_of_volume_records_partition_the_pooled_train_and_val(tmp_path):
    out = str(tmp_path / "v")
    sum(convert_synthetic_volumes(out, size=16, counts={"train": 12, "val": 6, "test": 4}, salt="s"))
    manifest = load_manifest(out)
    config = load_config(None, ["data.cv_folds=3", "data.cv_fold=1"]).data
    files = split_files(out, manifest, "train", config)
    assert files == split_files(out, manifest, "val", config) and len(files) == 2  # pooled train + val shards
    records = list(tf.data.TFRecordDataset(files))
    sources = {name: {parse_volume(r, 2)["source"].numpy() for r in records if fold_filter(config, name, 2)(r)}
               for name in ("train", "val")}
    assert sources["train"] and sources["val"] and not sources["train"] & sources["val"]
    assert len(sources["train"]) + len(sources["val"]) == 18
    assert fold_filter(config, "test", 2) is None and fold_filter(load_config(None, []).data, "val", 2) is None
    with pytest.raises(ValueError, match=r"data.cv_fold must be in \[0, 3\)"):
        fold_filter(load_config(None, ["data.cv_folds=3", "data.cv_fold=0"]).data.__class__(cv_folds=3, cv_fold=5),
                    "val", 2)


def test_class_weights_balance_the_training_counts_and_normalize_uses_the_manifest():
    manifest = {"class_names": ["a", "b"], "splits": {"train": {"class_counts": {"a": 30, "b": 10}}},
                "pixel_mean": [0.5], "pixel_std": [0.25]}
    np.testing.assert_allclose(class_weights(manifest), [40 / 60, 40 / 20])
    np.testing.assert_allclose(normalize(tf.constant([0.75]), manifest).numpy(), [1.0])
