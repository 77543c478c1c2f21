import numpy as np
import pytest
import tensorflow as tf

from tfxmed.config import DataConfig
from tfxmed.data import pipeline


def test_eval_pipeline_normalises_with_manifest_statistics(tiny_dataset, manifest_of):
    manifest = manifest_of(tiny_dataset)
    config = DataConfig(image_size=32, augment=False)
    batches = list(pipeline.build_dataset(tiny_dataset, manifest, "train", config, training=False, batch_size=40))
    images = np.concatenate([b["image"].numpy() for b in batches])
    assert images.shape == (96, 32, 32, 1)  # eval keeps every example (no drop_remainder)
    # Normalised with the train split's μ/σ → the train split itself has mean ≈ 0 and std ≈ 1.
    assert abs(images.mean()) < 1e-3 and images.std() == pytest.approx(1.0, abs=1e-3)
    labels = np.concatenate([b["label"].numpy() for b in batches])
    assert labels.sum(0).tolist() == [48, 48]


def test_training_pipeline_has_static_batches_and_aligned_masks(tiny_dataset, manifest_of):
    manifest = manifest_of(tiny_dataset)
    config = DataConfig(image_size=32)
    dataset = pipeline.build_dataset(tiny_dataset, manifest, "train", config, training=True, batch_size=32)
    assert dataset.element_spec["image"].shape == (32, 32, 32, 1)  # static for TPU
    batches = list(dataset)
    assert len(batches) == 3
    for batch in batches:
        lesion = batch["label"].numpy()[:, 1] == 1
        mask_area = batch["mask"].numpy().reshape(32, -1).max(-1)
        assert np.all(mask_area[~lesion] == 0)  # normals have no lesion mask


def test_resize_to_other_size(tiny_dataset, manifest_of):
    manifest = manifest_of(tiny_dataset)
    dataset = pipeline.build_dataset(tiny_dataset, manifest, "val", DataConfig(image_size=48), False, 8)
    batch = next(iter(dataset))
    assert batch["image"].shape == (8, 48, 48, 1) and batch["mask"].shape == (8, 48, 48, 1)


def test_class_weights_balance_counts():
    manifest = {"class_names": ["a", "b"], "splits": {"train": {"class_counts": {"a": 30, "b": 10}}}}
    weights = pipeline.class_weights(manifest)
    np.testing.assert_allclose(weights, [40 / 60, 40 / 20])
    np.testing.assert_allclose(weights * [30, 10], [20, 20])  # each class contributes equally


def test_input_context_shards_and_splits_the_global_batch(tiny_dataset, manifest_of):
    manifest = manifest_of(tiny_dataset)
    config = DataConfig(image_size=32, augment=False)
    seen = []
    for pipeline_id in range(2):
        context = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=pipeline_id, num_replicas_in_sync=2)
        dataset = pipeline.build_dataset(tiny_dataset, manifest, "train", config, False, 16, context)
        batches = list(dataset)
        assert batches[0]["image"].shape[0] == 8  # per-replica share of the global batch
        seen.append(np.concatenate([b["image"].numpy() for b in batches]))
    assert len(seen[0]) + len(seen[1]) == 96
    flat = [s.reshape(len(s), -1) for s in seen]
    assert not any(np.allclose(a, b) for a in flat[0][:5] for b in flat[1])  # disjoint shards


def test_unknown_split_is_named(tiny_dataset, manifest_of):
    with pytest.raises(ValueError, match="split 'holdout'"):
        pipeline.build_dataset(tiny_dataset, manifest_of(tiny_dataset), "holdout", DataConfig(), False, 4)


def test_k_fold_partitions_the_pooled_train_and_val_records(tiny_dataset, manifest_of):
    import dataclasses

    from tfxmed.config import DataConfig
    from tfxmed.data.pipeline import build_dataset

    manifest = manifest_of(tiny_dataset)
    pooled = manifest["splits"]["train"]["count"] + manifest["splits"]["val"]["count"]

    def size(split, fold):
        config = dataclasses.replace(DataConfig(image_size=32, augment=False), cv_folds=3, cv_fold=fold)
        return sum(int(b["label"].shape[0]) for b in build_dataset(tiny_dataset, manifest, split, config, False, 64))

    val_sizes = []
    for fold in range(3):
        train_size, val_size = size("train", fold), size("val", fold)
        assert train_size + val_size == pooled and val_size > 0
        val_sizes.append(val_size)
    assert sum(val_sizes) == pooled  # every record validates in exactly one fold
    assert size("test", 0) == manifest["splits"]["test"]["count"]  # the test split is untouched


def test_oversampling_balances_an_imbalanced_training_split(tmp_path, tiny_config, manifest_of):
    import dataclasses

    from tfrecords_tools import sources
    from tfxmed.data import pipeline

    out = str(tmp_path / "imbalanced")
    sum(sources.convert_synthetic(out, image_size=32, counts={"train": 100, "val": 8, "test": 8},
                                  positive_fraction=0.1, shard_examples=25, salt="s"))
    manifest = manifest_of(out)
    assert manifest["splits"]["train"]["class_counts"]["lesion"] <= 15
    config = dataclasses.replace(tiny_config.data, oversample=True, augment=False)
    dataset = pipeline.build_dataset(out, manifest, "train", config, True, 50)
    labels = np.concatenate([b["label"].numpy().argmax(-1) for b in dataset.take(8)])
    assert len(labels) == 400 and 0.4 < labels.mean() < 0.6  # ≈ 0.5 instead of ≈ 0.1
    plain = pipeline.build_dataset(out, manifest, "train", dataclasses.replace(config, oversample=False), True, 50)
    assert np.concatenate([b["label"].numpy().argmax(-1) for b in plain.take(2)]).mean() < 0.2


def test_cache_keeps_decoded_images_and_still_augments_every_pass(tiny_dataset, tiny_config, manifest_of):
    import dataclasses

    manifest = manifest_of(tiny_dataset)
    cached = dataclasses.replace(tiny_config.data, cache=True)
    plain = pipeline.build_dataset(tiny_dataset, manifest, "test", tiny_config.data, False, 16)
    again = pipeline.build_dataset(tiny_dataset, manifest, "test", cached, False, 16)
    for a, b in zip(plain, again):  # eval: identical to the uncached pipeline
        np.testing.assert_allclose(a["image"].numpy(), b["image"].numpy())
    train = pipeline.build_dataset(tiny_dataset, manifest, "train", cached, True, 96).repeat()
    first, second = [batch["image"].numpy() for batch in train.take(2)]  # pass 2 is read from the cache
    assert first.shape == second.shape == (96, 32, 32, 1)
    assert not np.allclose(np.sort(first.ravel()), np.sort(second.ravel()))  # augmentation differs per pass
    with pytest.raises(ValueError, match="use one of them"):
        pipeline.build_dataset(tiny_dataset, manifest, "train", dataclasses.replace(cached, oversample=True), True, 8)


def test_training_batches_can_leave_the_masks_out(tiny_dataset, manifest_of):
    config = DataConfig(image_size=32)
    dataset = pipeline.build_dataset(tiny_dataset, manifest_of(tiny_dataset), "train", config, True, 32, masks=False)
    assert "mask" not in dataset.element_spec and dataset.element_spec["image"].shape == (32, 32, 32, 1)
    assert len(list(dataset)) == 3
