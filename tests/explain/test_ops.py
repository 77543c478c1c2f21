import numpy as np
import tensorflow as tf

from tfxmed.explain.ops import gaussian_blur, minmax_maps, normalize_maps, spatial_axes, upsample
from tfxmed.metrics.maps import minmax_per_map


def test_minmax_maps_matches_the_numpy_twin_and_keeps_constant_maps_at_zero():
    maps = np.stack([np.arange(16.0).reshape(4, 4), np.full((4, 4), 3.0), -np.arange(16.0).reshape(4, 4) ** 2])
    maps = maps.astype("float32")
    scaled = minmax_maps(tf.constant(maps)).numpy()
    np.testing.assert_allclose(scaled, minmax_per_map(maps), atol=1e-7)
    np.testing.assert_array_equal(scaled[1], 0)


def test_minmax_maps_runs_in_a_graph_with_gradients():
    maps = tf.Variable(np.random.default_rng(0).random((2, 3, 4, 5)).astype("float32"))
    compiled = tf.function(lambda m: tf.reduce_sum(minmax_maps(m)))
    with tf.GradientTape() as tape:
        total = compiled(maps)
    assert np.isfinite(tape.gradient(total, maps).numpy()).all()


def test_normalize_maps_divides_by_the_peak():
    maps = np.array([[[0.5, 1.0], [2.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]], np.float32)
    np.testing.assert_allclose(normalize_maps(tf.constant(maps)).numpy(), [[[0.25, 0.5], [1.0, 0.0]], np.zeros((2, 2))])


def test_spatial_axes_and_upsampling_in_2d_and_3d():
    assert spatial_axes(tf.zeros((2, 4, 4, 3))) == [1, 2]
    assert spatial_axes(tf.zeros((2, 4, 4, 4, 3))) == [1, 2, 3]
    assert upsample(tf.ones((2, 3, 3)), (6, 6)).shape == (2, 6, 6)
    np.testing.assert_allclose(upsample(tf.ones((1, 2, 2, 2)), (4, 4, 4)).numpy(), 1.0, rtol=1e-6)


def test_gaussian_blur_keeps_the_mean_of_a_constant_image_and_smooths_a_spike():
    np.testing.assert_allclose(gaussian_blur(tf.ones((1, 8, 8, 2)), 1.0).numpy(), 1.0, rtol=1e-5)
    spike = np.zeros((1, 9, 9, 1), np.float32)
    spike[0, 4, 4, 0] = 1.0
    blurred = gaussian_blur(tf.constant(spike), 1.0).numpy()[0, ..., 0]
    assert blurred[4, 4] < 1.0 and blurred[4, 4] == blurred.max() and np.allclose(blurred, blurred.T)
