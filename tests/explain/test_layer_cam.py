"""LayerCAM on the hand-built model equals its formula computed independently in NumPy."""

import pytest

from tests.explain.references import check_cam_formula, combine, relu
from tfxmed.explain import LayerCam


@pytest.mark.parametrize("target", [0, 1])
def test_layer_cam_matches_formula(target, hand_model, rng):
    check_cam_formula(LayerCam, lambda a, g: combine(relu(g), a), hand_model, rng, target)
