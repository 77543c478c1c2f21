"""HiResCAM on the hand-built model equals its formula computed independently in NumPy."""

import numpy as np
import pytest

from tests.explain.references import cam_and_formula, combine
from tfxmed.explain import HiResCam


@pytest.mark.parametrize("target", [0, 1])
def test_hires_cam_matches_formula(target, hand_model, rng):
    maps, expected = cam_and_formula(HiResCam, lambda a, g: combine(g, a), hand_model, rng, target)
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-6)
