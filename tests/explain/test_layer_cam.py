"""LayerCAM on the hand-built model equals its formula computed independently in NumPy."""

import numpy as np
import pytest

from tests.explain.references import cam_and_formula, combine, relu
from tfxmed.explain import LayerCam


@pytest.mark.parametrize("target", [0, 1])
def test_layer_cam_matches_formula(target, hand_model, rng):
    maps, expected = cam_and_formula(LayerCam, lambda a, g: combine(relu(g), a), hand_model, rng, target)
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-6)
