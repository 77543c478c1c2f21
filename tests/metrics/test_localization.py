"""Tests for tfxmed.metrics.localization against hand-computed values."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from tfxmed.metrics.localization import (
    binarize,
    energy_pointing_game,
    iou,
    localization_summary,
    pointing_game,
)


def rectangle(shape, *slices):
    """Float array of ``shape`` that is 1 inside the given slices and 0 elsewhere."""
    array = np.zeros(shape)
    array[tuple(slices)] = 1.0
    return array


def test_binarize_fraction_of_max():
    maps = np.array([[[0.0, 1.0], [2.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]])
    binary = binarize(maps, "fraction_of_max", 0.5)
    # Threshold 0.5 * 4 = 2 for the first map; the all-zero map selects nothing.
    assert binary.dtype == bool
    assert binary.tolist() == [[[False, False], [True, True]], [[False, False], [False, False]]]


def test_binarize_top_fraction_selects_exact_count():
    maps = np.stack([np.arange(100.0).reshape(10, 10), np.zeros((10, 10))])
    binary = binarize(maps, "top_fraction", 0.1)
    expected = np.zeros((10, 10), dtype=bool)
    expected[9, :] = True  # values 90..99
    assert np.array_equal(binary[0], expected)
    assert not binary[1].any()


def test_binarize_otsu_separates_bimodal_map():
    random = np.random.default_rng(0)
    heat_map = 0.1 + 0.02 * random.standard_normal((20, 20))
    heat_map[5:12, 8:15] = 0.9 + 0.02 * random.standard_normal((7, 7))
    binary = binarize(heat_map[np.newaxis, ..., np.newaxis], "otsu")
    assert binary.shape == (1, 20, 20)
    assert np.array_equal(binary[0], rectangle((20, 20), slice(5, 12), slice(8, 15)) > 0)


def test_binarize_otsu_without_scikit_image(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage.filters", None)
    with pytest.raises(ImportError, match="scikit-image"):
        binarize(np.ones((1, 4, 4)), "otsu")


def test_binarize_unknown_method_lists_allowed():
    with pytest.raises(ValueError, match="fraction_of_max.*top_fraction.*otsu"):
        binarize(np.ones((1, 4, 4)), "median")


def test_iou_of_two_rectangles():
    shape = (10, 10)
    maps = np.stack([
        rectangle(shape, slice(2, 6), slice(2, 6)),   # 4 x 4 = 16 pixels
        rectangle(shape, slice(0, 2), slice(0, 2)),   # disjoint from the mask
        np.zeros(shape),                              # empty map, empty mask
    ])
    masks = np.stack([
        rectangle(shape, slice(4, 8), slice(3, 9)),   # 4 x 6 = 24 pixels
        rectangle(shape, slice(5, 7), slice(5, 7)),
        np.zeros(shape),
    ])
    # Overlap: rows 4-5 x columns 3-5 = 6 pixels; union = 16 + 24 - 6 = 34.
    values = iou(maps[..., np.newaxis], masks[..., np.newaxis])
    assert values[0] == pytest.approx(6 / 34)
    assert values[1] == 0.0
    assert np.isnan(values[2])


def test_pointing_game_hit_miss_and_tolerance():
    shape = (10, 10)
    peak = np.zeros(shape)
    peak[5, 5] = 1.0
    maps = np.stack([peak, peak, peak])
    masks = np.stack([
        rectangle(shape, slice(4, 7), slice(4, 7)),   # contains the peak
        rectangle(shape, slice(7, 9), slice(0, 10)),  # two rows below the peak
        np.zeros(shape),                              # empty mask
    ])
    hits = pointing_game(maps, masks)
    assert hits[0] == 1.0 and hits[1] == 0.0 and np.isnan(hits[2])
    assert pointing_game(maps, masks, tolerance=1)[1] == 0.0
    assert pointing_game(maps, masks, tolerance=2)[1] == 1.0


def test_pointing_game_tolerance_is_a_disk_and_uses_first_maximum():
    shape = (10, 10)
    map_ = np.zeros(shape)
    map_[5, 5] = 1.0
    mask = np.zeros(shape)
    mask[7, 7] = 1.0  # Euclidean distance sqrt(8) ~ 2.83 from the peak
    assert pointing_game(map_[None], mask[None], tolerance=2)[0] == 0.0  # a square would hit
    assert pointing_game(map_[None], mask[None], tolerance=3)[0] == 1.0
    tied = np.zeros(shape)
    tied[1, 1] = tied[8, 8] = 1.0
    mask_at_second = np.zeros(shape)
    mask_at_second[8, 8] = 1.0
    assert pointing_game(tied[None], mask_at_second[None])[0] == 0.0


def test_energy_pointing_game_exact_fraction():
    map_ = np.zeros((4, 4))
    map_[0, 0] = 2.0   # inside
    map_[0, 1] = 1.0   # inside
    map_[1, 1] = -5.0  # inside but negative: ignored
    map_[3, 3] = 1.0   # outside
    mask = rectangle((4, 4), slice(0, 2), slice(0, 2))
    maps = np.stack([map_, np.zeros((4, 4)), map_])
    masks = np.stack([mask, mask, np.zeros((4, 4))])
    values = energy_pointing_game(maps, masks)
    assert values[0] == pytest.approx(3 / 4)
    assert np.isnan(values[1]) and np.isnan(values[2])


def test_three_dimensional_volumes():
    shape = (4, 6, 6)
    map_ = rectangle(shape, slice(0, 2), slice(0, 3), slice(0, 3))   # 2*3*3 = 18 voxels
    map_[1, 2, 2] = 2.0                                            # the peak
    mask = rectangle(shape, slice(1, 3), slice(2, 5), slice(2, 5))  # 2*3*3 = 18 voxels
    # Binarised at 0.5 * 2 = 1 keeps all 18 voxels; overlap 1*1*1 = 1; union 18 + 18 - 1 = 35.
    assert iou(map_[None], mask[None])[0] == pytest.approx(1 / 35)
    assert pointing_game(map_[None], mask[None])[0] == 1.0
    # Positive energy: 17 voxels of 1 and one of 2 = 19; inside the mask only the peak (2).
    assert energy_pointing_game(map_[None], mask[None])[0] == pytest.approx(2 / 19)
    far_mask = rectangle(shape, slice(3, 4), slice(5, 6), slice(5, 6))
    assert pointing_game(map_[None], far_mask[None], tolerance=2)[0] == 0.0


def test_localization_summary_over_non_empty_masks():
    shape = (10, 10)
    maps = np.stack([
        rectangle(shape, slice(2, 6), slice(2, 6)),
        rectangle(shape, slice(0, 2), slice(0, 2)),
        rectangle(shape, slice(0, 2), slice(0, 2)),  # empty mask: not evaluated
    ])
    masks = np.stack([
        rectangle(shape, slice(4, 8), slice(3, 9)),
        rectangle(shape, slice(5, 7), slice(5, 7)),
        np.zeros(shape),
    ])
    summary = localization_summary(maps, masks)
    assert summary["num_evaluated"] == 2
    assert summary["iou_mean"] == pytest.approx((6 / 34 + 0.0) / 2)
    assert summary["iou_median"] == pytest.approx((6 / 34 + 0.0) / 2)
    # Image 0: first maximum at (2, 2), outside the mask; image 1: (0, 0), outside too.
    assert summary["pointing_game"] == 0.0
    assert summary["energy_pointing_game"] == pytest.approx((6 / 16 + 0.0) / 2)
    json.dumps(summary, allow_nan=False)


def test_localization_summary_with_nothing_evaluated():
    summary = localization_summary(np.ones((2, 3, 3)), np.zeros((2, 3, 3)))
    assert summary == {"iou_mean": None, "iou_median": None, "pointing_game": None,
                       "energy_pointing_game": None, "num_evaluated": 0}
    json.dumps(summary, allow_nan=False)


def test_mismatched_shapes_raise():
    with pytest.raises(ValueError, match=r"maps \(2, 4, 4\) and masks \(2, 4, 5\)"):
        iou(np.ones((2, 4, 4)), np.ones((2, 4, 5)))
    with pytest.raises(ValueError, match="num_examples"):
        pointing_game(np.ones(4), np.ones(4))


def test_tune_binarization_picks_the_value_that_fits_the_masks():
    from tfxmed.metrics.localization import tune_binarization

    # A map whose top 30% of its maximum covers exactly the mask: value 0.3 must win.
    grid = np.zeros((2, 8, 8))
    grid[:, 2:6, 2:6] = 0.35
    grid[:, 3:5, 3:5] = 1.0
    grid[:, 0, 0] = 0.2  # a weak blob outside: included only below 0.2
    masks = np.zeros((2, 8, 8), bool)
    masks[:, 2:6, 2:6] = True
    best, scores = tune_binarization(grid, masks)
    assert (best == 0.3 and scores[0.3] == pytest.approx(1.0) and scores[0.1] < 1.0
            and scores[0.5] == pytest.approx(0.25))
    with pytest.raises(ValueError, match="otsu"):
        tune_binarization(grid, masks, "otsu")
