"""Saliency on the hand-built model equals the closed-form input gradient."""

import numpy as np

from tests.explain.references import LOGIT_WEIGHTS, SPATIAL
from tfxmed.explain import Saliency


def test_saliency_equals_closed_form_gradient(hand_model, rng):
    images = rng.normal(size=(3, 4, 4, 1)).astype("float32")
    maps = Saliency(hand_model)(images, 1)
    x = images[..., 0]
    gradient = (LOGIT_WEIGHTS[0, 1] * (x > 0) - LOGIT_WEIGHTS[1, 1] * (x < 0)) * SPATIAL / 16.0
    np.testing.assert_allclose(maps, np.abs(gradient), rtol=1e-5, atol=1e-7)
