import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import REPO, TINY_CONFIG
from tfxmed.data.augment_albumentations import albumentations_augment, build_transform, check_backend


def _blob(size=32):
    mask = np.zeros((size, size, 1), np.float32)
    mask[6:14, 18:26] = 1.0
    return mask


def test_geometry_moves_image_and_mask_together():
    transform = build_transform(15.0, True, True, 0.0, 0.0, 0.1, 32, seed=3)
    mask = _blob()
    for _ in range(5):
        image, moved = albumentations_augment(tf.constant(mask), tf.constant(mask), transform)
        image, moved = image.numpy()[..., 0], moved.numpy()[..., 0]
        assert moved.sum() > 0
        ys, xs = np.nonzero(moved > 0.5)
        weights = image / image.sum()
        centre = (np.sum(weights * np.arange(32)[:, None]), np.sum(weights * np.arange(32)[None, :]))
        assert abs(centre[0] - ys.mean()) < 1.0 and abs(centre[1] - xs.mean()) < 1.0


def test_brightness_and_contrast_are_not_clipped():
    transform = build_transform(0.0, False, False, 0.2, 0.0, 0.0, 16, seed=0)
    image = np.full((16, 16, 1), 0.95, np.float32)
    shifts = {
        float(np.round(
            albumentations_augment(tf.constant(image), tf.zeros((16, 16, 1)), transform)[0].numpy()[0, 0, 0] - 0.95, 6))
        for _ in range(20)
    }
    assert len(shifts) > 5 and all(-0.2 <= s <= 0.2 for s in shifts) and max(shifts) > 0.05  # 0.95 + s can pass 1.0


def test_backend_checks_and_tpu_refusal():
    check_backend("tf", "tpu")
    check_backend("albumentations", "cpu")
    with pytest.raises(ValueError, match="TPU input pipelines"):
        check_backend("albumentations", "tpu")
    with pytest.raises(ValueError, match="augment_backend must be one of"):
        check_backend("opencv", "cpu")
    result = subprocess.run([sys.executable, "-m", "tfxmed.train", "--config", TINY_CONFIG, "--strategy=tpu",
                             "--set", "data.augment_backend=albumentations"], cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2 and "use 'tf' with runtime.strategy=tpu" in result.stderr


def test_pipeline_runs_the_albumentations_backend(tiny_dataset, tiny_config, manifest_of):
    import dataclasses

    from tfxmed.data import pipeline

    config = dataclasses.replace(tiny_config.data, augment_backend="albumentations", tfrecord_dir=tiny_dataset)
    batch = next(iter(pipeline.build_dataset(tiny_dataset, manifest_of(tiny_dataset), "train", config, True, 8)))
    assert batch["image"].shape == (8, 32, 32, 1) and np.isfinite(batch["image"].numpy()).all()
    assert batch["mask"].shape == (8, 32, 32, 1)
