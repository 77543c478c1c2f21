"""XGrad-CAM on the hand-built model equals its formula computed independently in NumPy."""

import numpy as np
import pytest

from tests.explain.references import cam_and_formula, combine
from tfxmed.explain import XGradCam


def _xgrad_cam(a, g):
    total = a.sum(axis=(1, 2), keepdims=True)
    share = np.divide(a, total, out=np.zeros_like(a), where=total != 0)
    return combine((share * g).sum(axis=(1, 2), keepdims=True), a)


@pytest.mark.parametrize("target", [0, 1])
def test_xgrad_cam_matches_formula(target, hand_model, rng):
    maps, expected = cam_and_formula(XGradCam, _xgrad_cam, hand_model, rng, target)
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-6)
