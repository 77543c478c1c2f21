"""Kernel SHAP is exact (the Shapley value of each superpixel) for an additive model."""

import numpy as np

from tests.explain.references import linear_model
from tfxmed.explain import KernelShap
from tfxmed.explain.superpixels import segment


def test_kernel_shap_is_exact_for_an_additive_model(rng):
    model = linear_model()
    image = np.abs(rng.normal(size=(1, 8, 8, 1))).astype("float32")
    explainer = KernelShap(model, samples=64, segments=6, batch_size=16, seed=1)
    maps = explainer(image, 0)
    labels = segment(image[0], "slic", 6, 1)
    contribution = image[0, ..., 0] * model.get_layer("logits").get_weights()[0][:, 0].reshape(8, 8)
    expected = np.zeros_like(contribution)
    for value in np.unique(labels):
        expected[labels == value] = contribution[labels == value].sum()  # Shapley value of a linear term
    np.testing.assert_allclose(maps[0], expected, rtol=1e-3, atol=1e-4)
