"""Tests of the embedded synthetic chest-X-ray benchmark (`tfxmed.data.synthetic`)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy import ndimage

from tfxmed.data.synthetic import LESION_TYPES, SyntheticSpec, _lung_field, class_names, generate


def _lesion_contrast(spec: SyntheticSpec, split: str = "train") -> float:
    """Mean over positives of (mean intensity under the mask - mean of the other lung pixels)."""
    batch = generate(spec, split)
    values = []
    for i, (image, mask) in enumerate(zip(batch.images[..., 0].astype(float), batch.masks[..., 0] > 0)):
        lungs = _lung_field(spec, split, i)
        rest = lungs & ~mask
        if mask.any() and rest.any():
            values.append(image[mask].mean() - image[rest].mean())
    return float(np.mean(values))


def _noise_level(spec: SyntheticSpec) -> float:
    """Median over images of the spread of the lung pixels around a 3x3 local mean."""
    batch = generate(spec)
    levels = []
    for i, image in enumerate(batch.images[..., 0].astype(float)):
        residual = image - ndimage.uniform_filter(image, 3)
        levels.append(residual[ndimage.binary_erosion(_lung_field(spec, "train", i), iterations=2)].std())
    return float(np.median(levels))


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve via the rank-sum statistic."""
    order = scores.argsort().argsort() + 1.0
    positives = labels.astype(bool)
    count_positive, count_negative = positives.sum(), (~positives).sum()
    rank_sum = order[positives].sum() - count_positive * (count_positive + 1) / 2
    return float(rank_sum / (count_positive * count_negative))


def test_same_spec_and_split_give_identical_bytes_and_splits_differ():
    spec = SyntheticSpec(image_size=32, num_examples=16)
    first, second = generate(spec, "train"), generate(spec, "train")
    assert first.images.tobytes() == second.images.tobytes()
    assert first.masks.tobytes() == second.masks.tobytes()
    np.testing.assert_array_equal(first.labels, second.labels)
    assert first.patient_ids == second.patient_ids
    other_seed = SyntheticSpec(image_size=32, num_examples=16, seed=7)
    for other in (generate(spec, "test"), generate(spec, "val"), generate(other_seed)):
        assert not np.array_equal(first.images, other.images)
    # Images within one split are not copies of each other (per-image jitter and noise).
    assert len({image.tobytes() for image in first.images}) == 16


def test_shapes_dtypes_and_patient_ids():
    batch = generate(SyntheticSpec(image_size=48, num_examples=20), "val")
    assert batch.images.shape == (20, 48, 48, 1) and batch.images.dtype == np.uint8
    assert batch.masks.shape == (20, 48, 48, 1) and batch.masks.dtype == np.uint8
    assert set(np.unique(batch.masks)) <= {0, 255}
    assert batch.labels.shape == (20,) and batch.labels.dtype == np.int64 and set(batch.labels) <= {0, 1}
    assert len(batch.patient_ids) == 20 and len(set(batch.patient_ids)) == 20
    assert all(re.fullmatch(r"SYN-val-\d{6}", pid) for pid in batch.patient_ids)
    assert class_names(SyntheticSpec()) == ["normal", "lesion"]
    # Dark background in the corners, a brighter body in the middle.
    assert batch.images[:, :3, :3].mean() < 50 < batch.images[:, 20:28, 20:28].mean()


@pytest.mark.parametrize("count, fraction", [(40, 0.25), (7, 0.5), (30, 0.0), (30, 1.0), (101, 0.33)])
def test_exact_class_balance(count, fraction):
    labels = generate(SyntheticSpec(image_size=32, num_examples=count, positive_fraction=fraction)).labels
    assert labels.sum() == round(count * fraction)


def test_labels_are_shuffled():
    labels = generate(SyntheticSpec(image_size=32, num_examples=60)).labels
    assert labels.sum() == 30 and not np.array_equal(labels, np.sort(labels))
    assert not np.array_equal(labels, np.sort(labels)[::-1])


def test_masks_match_labels_and_lie_inside_the_lungs():
    spec = SyntheticSpec(image_size=64, num_examples=40, difficulty=0.5)
    batch = generate(spec)
    has_mask = batch.masks.reshape(40, -1).max(-1) > 0
    np.testing.assert_array_equal(has_mask, batch.labels == 1)
    for i, (image, mask) in enumerate(zip(batch.images[..., 0].astype(float), batch.masks[..., 0] > 0)):
        lungs = _lung_field(spec, "train", i)
        assert not (mask & ~lungs).any()
        # The lung fields are darker than the rest of the body (the central square, outside the lungs).
        body = np.zeros_like(lungs)
        body[12:52, 12:52] = True
        assert image[lungs & ~mask].mean() + 20 < image[body & ~lungs].mean()


def test_lesions_are_brighter_than_their_surroundings():
    spec = SyntheticSpec(image_size=64, num_examples=60, difficulty=0.3)
    batch = generate(spec)
    brighter = []
    for i, (image, mask) in enumerate(zip(batch.images[..., 0].astype(float), batch.masks[..., 0] > 0)):
        if mask.any():
            ring = ndimage.binary_dilation(mask, iterations=3) & ~mask & _lung_field(spec, "train", i)
            if ring.any():
                brighter.append(image[mask].mean() - image[ring].mean())
    assert len(brighter) >= 20
    assert np.mean(brighter) > 10 and np.mean(np.array(brighter) > 0) > 0.9


def test_difficulty_lowers_contrast_and_raises_noise():
    contrasts = [_lesion_contrast(SyntheticSpec(image_size=64, num_examples=60, difficulty=d)) for d in (0.0, 0.5, 1.0)]
    assert contrasts[0] > contrasts[1] > contrasts[2] > 0
    assert contrasts[0] > 2 * contrasts[2]
    noise = [_noise_level(SyntheticSpec(image_size=64, num_examples=20, positive_fraction=0.0, difficulty=d))
             for d in (0.0, 1.0)]
    assert noise[1] > 2 * noise[0]


def test_max_brightness_alone_does_not_solve_the_task():
    # Distractors (bright spots outside the lungs, mediastinum, ribs) mean "any bright pixel" is no classifier.
    batch = generate(SyntheticSpec(image_size=64, num_examples=200, difficulty=0.5))
    image_max = batch.images.reshape(200, -1).max(-1).astype(float)
    assert 0.3 < _auc(image_max, batch.labels) < 0.7


def _corner(batch) -> np.ndarray:
    """Mean of the top-left 3x3 patch just inside the border, where the marker goes."""
    return batch.images[:, 1:4, 1:4, 0].mean(axis=(1, 2))


def test_confounder_marker_follows_the_label_in_train_only():
    spec = SyntheticSpec(image_size=40, num_examples=200, confounder_strength=1.0)
    train, test = generate(spec, "train"), generate(spec, "test")
    train_corner, test_corner = _corner(train), _corner(test)
    assert np.corrcoef(train_corner, train.labels)[0, 1] > 0.8
    np.testing.assert_array_equal(train_corner > 150, train.labels == 1)  # strength 1: marker iff positive
    assert abs(np.corrcoef(test_corner, test.labels)[0, 1]) < 0.3
    assert 0.35 < np.mean(test_corner > 150) < 0.65  # still present half the time in test
    plain = generate(SyntheticSpec(image_size=40, num_examples=50), "train")
    assert _corner(plain).max() < 60  # no marker at all without a confounder


def test_multi_label_variant():
    spec = SyntheticSpec(image_size=48, num_examples=200, multi_label=True, positive_fraction=0.3)
    batch = generate(spec)
    assert batch.labels.shape == (200, 3) and batch.labels.dtype == np.int64
    assert set(np.unique(batch.labels)) <= {0, 1}
    assert class_names(spec) == list(LESION_TYPES)
    assert np.all(np.abs(batch.labels.mean(0) - 0.3) < 0.1)
    has_mask = batch.masks.reshape(200, -1).max(-1) > 0
    np.testing.assert_array_equal(has_mask, batch.labels.any(1))
    # An effusion sits at the bottom of a lung: its mask is below the centre of that image's lungs.
    only_effusion = np.flatnonzero((batch.labels == [0, 0, 1]).all(1))
    assert len(only_effusion) >= 5
    for i in only_effusion:
        mask_rows = np.nonzero(batch.masks[i, ..., 0])[0]
        lung_rows = np.nonzero(_lung_field(spec, "train", i))[0]
        assert mask_rows.mean() > lung_rows.mean() + 5


def test_multi_label_confounder_uses_any_positive():
    spec = SyntheticSpec(image_size=40, num_examples=100, multi_label=True, confounder_strength=1.0)
    batch = generate(spec, "train")
    np.testing.assert_array_equal(_corner(batch) > 150, batch.labels.any(1))


def test_scales_to_128_pixels():
    spec = SyntheticSpec(image_size=128, num_examples=4, positive_fraction=1.0)
    batch = generate(spec)
    assert batch.images.shape == (4, 128, 128, 1) and batch.masks.shape == (4, 128, 128, 1)
    for i in range(4):
        mask = batch.masks[i, ..., 0] > 0
        assert mask.any() and not (mask & ~_lung_field(spec, "train", i)).any()


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("difficulty", 1.5, r"SyntheticSpec\.difficulty must be in \[0, 1\], got 1\.5"),
        ("image_size", 16, r"SyntheticSpec\.image_size must be an integer >= 32, got 16"),
        ("num_examples", 0, r"SyntheticSpec\.num_examples must be an integer >= 1, got 0"),
        ("positive_fraction", -0.1, r"SyntheticSpec\.positive_fraction must be in \[0, 1\]"),
        ("confounder_strength", 2.0, r"SyntheticSpec\.confounder_strength must be in \[0, 1\]"),
        ("seed", 1.5, r"SyntheticSpec\.seed must be an integer"),
    ],
)
def test_invalid_spec_names_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        generate(SyntheticSpec(**{field: value}))


def test_empty_split_is_rejected():
    with pytest.raises(ValueError, match="split"):
        generate(SyntheticSpec(image_size=32, num_examples=1), "")
