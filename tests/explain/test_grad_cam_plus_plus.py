"""Grad-CAM++ on the hand-built model equals its formula computed independently in NumPy."""

import numpy as np
import pytest

from tests.explain.references import cam_and_formula, combine, relu
from tfxmed.explain import GradCamPlusPlus


def _grad_cam_plus_plus(a, g):
    alpha = g**2 / (2 * g**2 + a.sum(axis=(1, 2), keepdims=True) * g**3)
    alpha = np.where(g != 0, np.nan_to_num(alpha), 0)
    return combine((alpha * relu(g)).sum(axis=(1, 2), keepdims=True), a)


@pytest.mark.parametrize("target", [0, 1])
def test_grad_cam_plus_plus_matches_formula(target, hand_model, rng):
    maps, expected = cam_and_formula(GradCamPlusPlus, _grad_cam_plus_plus, hand_model, rng, target)
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-6)
