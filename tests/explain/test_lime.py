"""LIME ranks first the superpixel that drives the score, and is seeded."""

import keras
import numpy as np

from tfxmed.explain import Lime


def test_lime_ranks_the_superpixel_that_drives_the_score(rng):
    inputs = keras.Input((16, 16, 1))
    # The score only looks at the top-left quadrant.
    cropped = keras.layers.Cropping2D(((0, 8), (0, 8)))(inputs)
    logits = keras.layers.Dense(2, name="logits")(keras.layers.GlobalAveragePooling2D()(cropped))
    model = keras.Model(inputs, logits)
    model.get_layer("logits").set_weights([np.array([[0.0, 5.0]], np.float32), np.zeros(2, np.float32)])
    image = np.ones((1, 16, 16, 1), np.float32)
    image[0, :8, :8] = 2.0
    image[0, 8:, 8:] = 0.5
    maps = Lime(model, samples=200, segments=4, seed=0)(image, 1)
    assert maps[0, :8, :8].mean() > 5 * abs(maps[0, 8:, 8:].mean())
    np.testing.assert_allclose(maps, Lime(model, samples=200, segments=4, seed=0)(image, 1))  # seeded
