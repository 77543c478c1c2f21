"""Every CAM variant on the hand-built model equals its formula computed independently in NumPy."""

import numpy as np
import pytest

from tests.explain.conftest import activations_and_gradients
from tfxmed.explain import (
    EigenCam,
    EigenGradCam,
    GradCam,
    GradCamPlusPlus,
    HiResCam,
    LayerCam,
    ScoreCam,
    XGradCam,
)


def _relu(x):
    return np.maximum(x, 0)


def _combine(weights, activations):
    return _relu((weights * activations).sum(-1))


def _principal(features):
    maps = []
    for item in features:
        flat = item.reshape(-1, item.shape[-1])
        _, _, vt = np.linalg.svd(flat, full_matrices=False)
        projection = flat @ vt[0]
        if projection[np.argmax(np.abs(projection))] < 0:
            projection = -projection
        maps.append(_relu(projection).reshape(item.shape[:-1]))
    return np.stack(maps)


def _grad_cam(a, g):
    return _combine(g.mean(axis=(1, 2), keepdims=True), a)


def _grad_cam_plus_plus(a, g):
    alpha = g**2 / (2 * g**2 + a.sum(axis=(1, 2), keepdims=True) * g**3)
    alpha = np.where(g != 0, np.nan_to_num(alpha), 0)
    return _combine((alpha * _relu(g)).sum(axis=(1, 2), keepdims=True), a)


def _xgrad_cam(a, g):
    total = a.sum(axis=(1, 2), keepdims=True)
    share = np.divide(a, total, out=np.zeros_like(a), where=total != 0)
    return _combine((share * g).sum(axis=(1, 2), keepdims=True), a)


REFERENCES = {
    GradCam: _grad_cam,
    GradCamPlusPlus: _grad_cam_plus_plus,
    XGradCam: _xgrad_cam,
    LayerCam: lambda a, g: _combine(_relu(g), a),
    HiResCam: lambda a, g: _combine(g, a),
    EigenCam: lambda a, g: _principal(a),
    EigenGradCam: lambda a, g: _principal(a * g),
}


@pytest.mark.parametrize("method", list(REFERENCES), ids=lambda m: m.__name__)
@pytest.mark.parametrize("target", [0, 1])
def test_cam_variant_matches_formula(method, target, hand_model, rng):
    images = rng.normal(size=(3, 4, 4, 1)).astype("float32")
    maps = method(hand_model, layer="features", upsample_to_input=False, normalize=False)(images, target)
    activations, gradients = activations_and_gradients(images, target)
    np.testing.assert_allclose(maps, REFERENCES[method](activations, gradients), rtol=1e-4, atol=1e-6)


def test_variants_differ_where_their_formulas_differ(hand_model, rng):
    images = rng.normal(size=(2, 4, 4, 1)).astype("float32")
    maps = {m.__name__: m(hand_model, layer="features", normalize=False)(images, 1) for m in REFERENCES}
    assert not np.allclose(maps["GradCam"], maps["HiResCam"])
    assert not np.allclose(maps["GradCam"], maps["LayerCam"])


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
        expected.append(_relu((features * weights).sum(-1)))
    np.testing.assert_allclose(maps, np.stack(expected), rtol=1e-4, atol=1e-6)
