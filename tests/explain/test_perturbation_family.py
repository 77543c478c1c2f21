import keras
import numpy as np
import pytest

from tfxmed.explain import KernelShap, Lime, Occlusion
from tfxmed.explain.occlusion import patch_masks
from tfxmed.explain.superpixels import segment


def _linear_model(size=8, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 1))
    logits = keras.layers.Dense(2, name="logits")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, logits)


def test_occlusion_of_a_linear_model_matches_closed_form(rng):
    model = _linear_model()
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


def test_kernel_shap_is_exact_for_an_additive_model(rng):
    model = _linear_model()
    image = np.abs(rng.normal(size=(1, 8, 8, 1))).astype("float32")
    explainer = KernelShap(model, samples=64, segments=6, batch_size=16, seed=1)
    maps = explainer(image, 0)
    labels = segment(image[0], "slic", 6, 1)
    contribution = image[0, ..., 0] * model.get_layer("logits").get_weights()[0][:, 0].reshape(8, 8)
    expected = np.zeros_like(contribution)
    for value in np.unique(labels):
        expected[labels == value] = contribution[labels == value].sum()  # Shapley value of a linear term
    np.testing.assert_allclose(maps[0], expected, rtol=1e-3, atol=1e-4)


def test_lime_ranks_the_superpixel_that_drives_the_score(rng):
    inputs = keras.Input((16, 16, 1))
    # The score only looks at the top-left quadrant.
    cropped = keras.layers.Cropping2D(((0, 8), (0, 8)))(inputs)
    logits = keras.layers.Dense(2, name="logits")(keras.layers.GlobalAveragePooling2D()(cropped))
    model = keras.Model(inputs, logits)
    model.get_layer("logits").set_weights([np.array([[0.0, 5.0]], np.float32), np.zeros(2, np.float32)])
    image = np.ones((1, 16, 16, 1), np.float32)
    image[0, :8, :8] = 2.0
    image[0, 8:, 8:] = 0.5
    maps = Lime(model, samples=200, segments=4, seed=0)(image, 1)
    assert maps[0, :8, :8].mean() > 5 * abs(maps[0, 8:, 8:].mean())
    np.testing.assert_allclose(maps, Lime(model, samples=200, segments=4, seed=0)(image, 1))  # seeded


def test_unknown_segmentation_is_named(rng):
    with pytest.raises(ValueError, match="slic, quickshift"):
        segment(rng.random((8, 8, 1)), "watershed")
    assert segment(rng.random((16, 16, 1)), "quickshift").shape == (16, 16)
