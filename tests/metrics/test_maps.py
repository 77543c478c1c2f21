import numpy as np

from tfxmed.metrics.maps import minmax_per_map, rank_per_map


def test_minmax_per_map_scales_each_map_and_keeps_constant_maps_at_zero():
    maps = np.array([[[0.0, 1.0], [3.0, 100.0]], [[2.0, 2.0], [2.0, 2.0]]])
    scaled = minmax_per_map(maps)
    assert scaled.dtype == np.float32 and scaled.shape == maps.shape
    np.testing.assert_allclose(scaled[0], [[0, 0.01], [0.03, 1.0]], rtol=1e-6)
    np.testing.assert_array_equal(scaled[1], 0)
    np.testing.assert_array_equal(minmax_per_map(np.array([[[np.nan, 1.0]]])), 0)  # undefined: zeros


def test_minmax_per_map_runs_over_every_non_batch_axis():
    images = np.random.default_rng(0).normal(size=(3, 4, 5, 2)).astype("float32")
    scaled = minmax_per_map(images)
    np.testing.assert_allclose(scaled.reshape(3, -1).min(1), 0)
    np.testing.assert_allclose(scaled.reshape(3, -1).max(1), 1, rtol=1e-6)
    low = images.min((1, 2, 3), keepdims=True)
    np.testing.assert_allclose(scaled, (images - low) / (images.max((1, 2, 3), keepdims=True) - low), rtol=1e-5)


def test_a_floor_keeps_nearly_constant_maps_near_zero():
    maps = np.array([[0.0, 1e-8, 2e-8], [0.0, 1.0, 2.0]])
    scaled = minmax_per_map(maps, floor=1e-6)
    np.testing.assert_allclose(scaled[0], [0.0, 0.01, 0.02], rtol=1e-5)  # divided by the floor, not stretched
    np.testing.assert_allclose(scaled[1], [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(minmax_per_map(np.full((1, 3), 5.0), floor=1e-6), 0)
    np.testing.assert_allclose(minmax_per_map(maps)[0], [0.0, 0.5, 1.0])  # without a floor: stretched


def test_rank_per_map_is_each_pixels_percentile_within_its_map():
    maps = np.array([[[0.0, 1.0], [3.0, 100.0]], [[1.0, 1.0], [0.0, 2.0]]])
    ranked = rank_per_map(maps)
    np.testing.assert_allclose(ranked[0], [[0, 1 / 3], [2 / 3, 1.0]])
    np.testing.assert_allclose(ranked[1], [[0.5, 0.5], [0.0, 1.0]])  # ties share their mean rank
