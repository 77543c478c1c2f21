"""Score-CAM on the hand-built model equals its formula computed independently in NumPy."""

import numpy as np

from tests.explain.references import activations_and_gradients, relu
from tfxmed.explain import ScoreCam


def test_score_cam_matches_formula(hand_model, rng):
    images = rng.normal(size=(2, 4, 4, 1)).astype("float32")
    target = 1
    score_cam = ScoreCam(hand_model, layer="features", upsample_to_input=False, normalize=False, batch_size=1)
    maps = score_cam(images, target)
    activations, _ = activations_and_gradients(images, target)
    expected = []
    for image, features in zip(images, activations):
        probabilities = []
        for k in range(features.shape[-1]):
            mask = features[..., k]
            span = mask.max() - mask.min()
            mask = (mask - mask.min()) / span if span > 0 else np.zeros_like(mask)
            probabilities.append(hand_model.predict((image * mask[..., None])[None], verbose=0)[0, target])
        weights = np.exp(probabilities) / np.exp(probabilities).sum()
        expected.append(relu((features * weights).sum(-1)))
    np.testing.assert_allclose(maps, np.stack(expected), rtol=1e-4, atol=1e-6)
