"""Occlusion of a linear model equals the closed-form drop of each patch's terms; the patch grid covers the image."""

import numpy as np

from tests.explain.references import linear_model
from tfxmed.explain import Occlusion
from tfxmed.explain.occlusion import patch_masks


def test_occlusion_of_a_linear_model_matches_closed_form(rng):
    model = linear_model()
    image = rng.normal(size=(1, 8, 8, 1)).astype("float32")
    kernel = model.get_layer("logits").get_weights()[0][:, 1].reshape(8, 8)
    maps = Occlusion(model, patch=4, stride=2, batch_size=3)(image, 1)
    masks = patch_masks(8, 8, 4, 2)
    contribution = image[0, ..., 0] * kernel
    drops = np.array([(contribution * m).sum() for m in masks])  # fill 0 removes exactly the patch's terms
    expected = np.einsum("p,phw->hw", drops, masks) / masks.sum(0)
    np.testing.assert_allclose(maps[0], expected, rtol=1e-4, atol=1e-5)


def test_patch_grid_covers_the_image():
    masks = patch_masks(10, 10, 4, 3)
    assert masks.sum(0).min() >= 1 and masks.shape[1:] == (10, 10)
