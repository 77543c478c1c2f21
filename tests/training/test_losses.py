import numpy as np
import pytest
import tensorflow as tf

from tfxmed.training.losses import explanation_consistency, map_distance, to_grid


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


def test_elementwise_bce_masks_labels_with_a_per_label_weight():
    import keras

    from tfxmed.training.losses import ElementwiseBinaryCrossentropy

    y_true = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], np.float32)
    y_pred = np.array([[0.9, 0.2, 0.3], [0.4, 0.6, 0.1]], np.float32)
    weights = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0]], np.float32)  # one ignored label per image
    elementwise = -(y_true * np.log(y_pred) + (1 - y_true) * np.log(1 - y_pred))
    loss = ElementwiseBinaryCrossentropy()
    assert float(loss(y_true, y_pred)) == pytest.approx(elementwise.mean(), rel=1e-5)
    weighted = float(loss(y_true, y_pred, sample_weight=weights))
    assert weighted == pytest.approx((elementwise * weights).sum() / 6, rel=1e-5)
    # The ignored entries do not matter at all: change their predictions, same loss.
    changed = y_pred.copy()
    changed[0, 2], changed[1, 1] = 0.99, 0.01
    assert float(loss(y_true, changed, sample_weight=weights)) == pytest.approx(weighted)
    unweighted = keras.losses.BinaryCrossentropy()(y_true, y_pred)
    assert float(loss(y_true, y_pred)) == pytest.approx(float(unweighted), rel=1e-4)  # same as Keras without weights
    smoothed = ElementwiseBinaryCrossentropy(label_smoothing=0.2)(y_true, y_pred)
    reference = keras.losses.BinaryCrossentropy(label_smoothing=0.2)(y_true, y_pred)
    assert float(smoothed) == pytest.approx(float(reference), rel=1e-4)


def test_grouped_crossentropy_is_the_mean_over_groups_of_each_group_s_crossentropy():
    from tfxmed.training.losses import GroupedCrossentropy

    groups = [[0, 1, 2], [3, 4]]
    y_true = np.array([[0, 1, 0, 1, 0], [1, 0, 0, 0, 1]], np.float32)
    y_pred = np.array([[0.2, 0.7, 0.1, 0.6, 0.4], [0.5, 0.3, 0.2, 0.1, 0.9]], np.float32)
    per_group = [[-np.log(0.7), -np.log(0.6)], [-np.log(0.5), -np.log(0.9)]]
    assert float(GroupedCrossentropy(groups)(y_true, y_pred)) == pytest.approx(np.mean(per_group), rel=1e-5)
    smoothed = float(GroupedCrossentropy(groups, label_smoothing=0.3)(y_true, y_pred))
    target = y_true * 0.7 + np.array([0.1, 0.1, 0.1, 0.15, 0.15])
    expected = np.mean([[-(target[i, g] * np.log(y_pred[i, g])).sum() for g in groups] for i in range(2)])
    assert smoothed == pytest.approx(expected, rel=1e-5)


def test_volume_maps_are_pooled_onto_the_grad_cam_grid_and_compared_in_3d():
    from tfxmed.training.losses import explanation_consistency, map_distance, to_grid

    volume = tf.reshape(tf.range(4 * 4 * 4, dtype=tf.float32), (1, 4, 4, 4))
    pooled = to_grid(volume, 2, 2, 2).numpy()
    assert pooled.shape == (1, 2, 2, 2)
    assert pooled[0, 0, 0, 0] == pytest.approx(np.mean([0, 1, 4, 5, 16, 17, 20, 21]))
    assert to_grid(volume, 3, 3, 3).shape == (1, 3, 3, 3)  # not a divisor: resampled
    assert float(map_distance(volume, volume)[0]) == 0.0
    assert float(explanation_consistency(pooled, volume)) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="grid of 2 dimensions"):
        to_grid(volume, 2, 2)
