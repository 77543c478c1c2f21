"""tf.data for volumes: resampling, spacing, augmentation that keeps masks aligned, the memory bound, and batches
through `pipeline.build_dataset` from converted synthetic volumes."""

import numpy as np
import pytest
import tensorflow as tf

from tfrecords_tools.volumes import convert_synthetic_volumes
from tfxmed.config import load_config
from tfxmed.data import pipeline
from tfxmed.data.volume_pipeline import augment_volume, check_batch_memory, crop_or_pad, resample
from tfxmed.storage import load_manifest


@pytest.fixture(scope="module")
def volumes(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("volumes") / "data")
    sum(convert_synthetic_volumes(out, size=24, counts={"train": 8, "val": 4, "test": 4}, salt="s", shard_examples=4))
    return out


def test_resampling_and_crop_or_pad_reach_the_asked_shape():
    cube = tf.ones([10, 12, 14, 1])
    assert resample(cube, (5, 6, 7)).shape == (5, 6, 7, 1)
    np.testing.assert_allclose(resample(cube, (20, 24, 28)).numpy(), 1.0, atol=1e-5)
    padded = crop_or_pad(cube, (12, 10, 14))
    assert padded.shape == (12, 10, 14, 1) and float(tf.reduce_sum(padded)) == 10 * 10 * 14
    assert float(tf.reduce_sum(padded[0])) == 0.0  # a zero slice before, one after


def test_augmentation_keeps_the_mask_on_the_structure_it_marks():
    """A bright box whose mask is the box: after flips, an axial rotation and a crop, the thresholded volume and
    the mask still coincide (intensity jitter off)."""
    volume = np.zeros((16, 24, 24, 1), np.float32)
    volume[5:11, 4:10, 14:21] = 1.0
    config = load_config(None, ["data.brightness=0", "data.contrast=0", "data.rotation_degrees=30",
                                "data.crop_fraction=0.3"]).data
    moved = 0
    for k in range(8):
        image, mask = augment_volume(tf.constant(volume), tf.constant(volume), config, tf.constant([k, 7], tf.int64))
        image, mask = image.numpy() > 0.5, mask.numpy() > 0.5
        overlap = (image & mask).sum() / max((image | mask).sum(), 1)
        assert overlap > 0.95, k
        moved += not np.array_equal(mask, volume > 0.5)
    assert moved >= 6  # and the transforms did move it


def test_a_batch_over_the_memory_bound_is_refused_with_what_fits():
    config = load_config(None, ["data.volume_batch_megabytes=1"]).data
    check_batch_memory(3, (32, 32, 32), config)  # 3 × 256 KiB
    with pytest.raises(ValueError, match="at most 4 fit"):
        check_batch_memory(5, (32, 32, 32), config)


def test_build_dataset_reads_volumes_normalised_with_aligned_masks(volumes):
    manifest = load_manifest(volumes)
    config = load_config(None, [f"data.tfrecord_dir={volumes}", "data.source=tfrecords", "data.image_size=16",
                                "data.volume_depth=12"]).data
    batch = next(iter(pipeline.build_dataset(volumes, manifest, "test", config, False, 4)))
    assert batch["image"].shape == (4, 12, 16, 16, 1) and batch["mask"].shape == (4, 12, 16, 16, 1)
    positives = batch["label"].numpy()[:, 1] == 1
    masks = batch["mask"].numpy()
    assert np.all(masks[~positives] == 0) and np.all(masks[positives].max((1, 2, 3, 4)) > 0.5)
    lesion = batch["image"].numpy()[batch["mask"].numpy() > 0.5].mean()
    assert lesion > batch["image"].numpy().mean()  # nodules are brighter than the average voxel
    training = pipeline.build_dataset(volumes, manifest, "train", config, True, 4, seed=1)
    first, second = (next(iter(training))["image"].numpy() for _ in range(2))
    assert first.shape == (4, 12, 16, 16, 1) and not np.array_equal(first, second)  # re-drawn each pass
    spaced = load_config(None, [f"data.tfrecord_dir={volumes}", "data.source=tfrecords", "data.image_size=16",
                                "data.volume_spacing=[4.0, 3.0, 3.0]"]).data
    assert next(iter(pipeline.build_dataset(volumes, manifest, "val", spaced, False, 2)))["image"].shape == \
        (2, 16, 16, 16, 1)
