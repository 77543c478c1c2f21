import numpy as np
import pytest
import tensorflow as tf

from tfxmed.training.losses import explanation_consistency, map_distance, normalize_per_map, to_grid


def _minmax(maps):
    low, high = maps.min((1, 2), keepdims=True), maps.max((1, 2), keepdims=True)
    return np.where(high > low, (maps - low) / np.where(high > low, high - low, 1), 0)


def test_to_grid_is_the_block_mean_and_has_gradients():
    maps = np.random.default_rng(0).random((3, 8, 12)).astype("float32")
    expected = maps.reshape(3, 2, 4, 4, 3).mean(axis=(2, 4))
    variable = tf.Variable(maps)
    with tf.GradientTape() as tape:
        grid = to_grid(variable, 2, 4)
        total = tf.reduce_sum(grid)
    np.testing.assert_allclose(grid.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(total, variable).numpy(), np.full(maps.shape, 1 / 12), rtol=1e-6)


def test_normalize_per_map_is_min_max_and_keeps_constant_maps_at_zero():
    maps = np.stack([np.arange(16.0).reshape(4, 4), np.full((4, 4), 3.0)]).astype("float32")
    np.testing.assert_allclose(normalize_per_map(tf.constant(maps)).numpy(), _minmax(maps), atol=1e-7)


@pytest.mark.parametrize("distance", ["l1", "l2", "cosine"])
def test_distances_match_numpy(distance):
    rng = np.random.default_rng(1)
    a, b = rng.random((4, 3, 5)).astype("float32"), rng.random((4, 3, 5)).astype("float32")
    if distance == "l1":
        expected = np.abs(a - b).mean((1, 2))
    elif distance == "l2":
        expected = np.sqrt(((a - b) ** 2).mean((1, 2)))
    else:
        fa, fb = a.reshape(4, -1), b.reshape(4, -1)
        expected = 1 - (fa * fb).sum(1) / np.linalg.norm(fa, axis=1) / np.linalg.norm(fb, axis=1)
    np.testing.assert_allclose(map_distance(tf.constant(a), tf.constant(b), distance).numpy(), expected, rtol=1e-5)


def test_consistency_is_zero_for_the_same_pattern_and_matches_a_reference():
    rng = np.random.default_rng(2)
    cam = rng.random((2, 4, 4)).astype("float32")
    ig = np.kron(cam, np.ones((8, 8), "float32")) * 7.0  # the same pattern at 8× resolution and another scale
    assert float(explanation_consistency(tf.constant(cam), tf.constant(ig))) < 1e-6
    other = rng.random((2, 32, 32)).astype("float32")
    expected = np.abs(_minmax(cam) - _minmax(other.reshape(2, 4, 8, 4, 8).mean((2, 4)))).mean()
    assert float(explanation_consistency(tf.constant(cam), tf.constant(other))) == pytest.approx(expected, rel=1e-5)


def test_unknown_distance_is_named():
    with pytest.raises(ValueError, match="l1, l2, cosine"):
        map_distance(tf.zeros((1, 2, 2)), tf.zeros((1, 2, 2)), "kl")
