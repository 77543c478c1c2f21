"""SmoothGrad: without noise it is saliency; with noise it is seeded (repeatable) and differs."""

import numpy as np

from tfxmed.explain import Saliency, SmoothGrad


def test_smooth_grad_without_noise_is_saliency_and_is_seeded(hand_model, rng):
    images = rng.normal(size=(2, 4, 4, 1)).astype("float32")
    np.testing.assert_allclose(
        SmoothGrad(hand_model, samples=3, noise_level=0.0)(images, 0), Saliency(hand_model)(images, 0), rtol=1e-5)
    noisy = SmoothGrad(hand_model, samples=4, noise_level=0.3, seed=5)
    np.testing.assert_allclose(noisy(images, 0), noisy(images, 0))
    assert not np.allclose(noisy(images, 0), Saliency(hand_model)(images, 0))
