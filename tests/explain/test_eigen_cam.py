"""Eigen-CAM and Eigen-Grad-CAM on the hand-built model equal their formulas computed independently in NumPy."""

import numpy as np
import pytest

from tests.explain.references import cam_and_formula, relu
from tfxmed.explain import EigenCam, EigenGradCam


def _principal(features):
    maps = []
    for item in features:
        flat = item.reshape(-1, item.shape[-1])
        _, _, vt = np.linalg.svd(flat, full_matrices=False)
        projection = flat @ vt[0]
        if projection[np.argmax(np.abs(projection))] < 0:
            projection = -projection
        maps.append(relu(projection).reshape(item.shape[:-1]))
    return np.stack(maps)


@pytest.mark.parametrize("target", [0, 1])
def test_eigen_cam_matches_formula(target, hand_model, rng):
    maps, expected = cam_and_formula(EigenCam, lambda a, g: _principal(a), hand_model, rng, target)
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("target", [0, 1])
def test_eigen_grad_cam_matches_formula(target, hand_model, rng):
    maps, expected = cam_and_formula(EigenGradCam, lambda a, g: _principal(a * g), hand_model, rng, target)
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-6)
