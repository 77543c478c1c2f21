"""The gradient family's shared base (`tfxmed.explain.gradient`): 3-D volumes and batch invariance."""

import numpy as np

from tests.explain.references import smooth_model
from tfxmed.explain import IntegratedGradients, Saliency


def test_gradient_methods_on_3d_volumes(rng):
    model = smooth_model((4, 6, 6, 1))
    volumes = rng.normal(size=(2, 4, 6, 6, 1)).astype("float32")
    maps = Saliency(model)(volumes, 1)
    assert maps.shape == (2, 4, 6, 6)
    assert np.all(IntegratedGradients(model, steps=64).completeness_error(volumes, 1) < 0.02)


def test_batch_invariance(rng):
    model = smooth_model()
    images = rng.normal(size=(5, 8, 8, 1)).astype("float32")
    for explainer_type in (Saliency, IntegratedGradients):
        together = explainer_type(model, batch_size=5)(images, 2)
        alone = np.concatenate([explainer_type(model, batch_size=1)(images[i : i + 1], 2) for i in range(5)])
        np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-6)
