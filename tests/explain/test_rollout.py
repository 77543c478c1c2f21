"""Attention rollout (Abnar & Zuidema 2020) against a NumPy reference built from each block's attention,
computed by calling the block's own MultiHeadAttention layer on its input."""

import keras
import numpy as np
import pytest

from tfxmed.explain.rollout import AttentionRollout
from tfxmed.models.vit import vit


def _reference(model, images, residual=0.5):
    chain = np.eye(17)[None]
    for index in (1, 2):
        normed = keras.Model(model.inputs[0], model.get_layer(f"block{index}_norm1").output)(images)
        _, scores = model.get_layer(f"block{index}_attention")(normed, normed, return_attention_scores=True)
        mixed = (1 - residual) * np.asarray(scores).mean(axis=1) + residual * np.eye(17)
        mixed /= mixed.sum(-1, keepdims=True)
        chain = mixed @ chain
    flow = chain[:, 0, 1:].reshape(-1, 4, 4)
    return flow


def test_rollout_chains_the_head_averaged_attention_of_every_block(rng):
    keras.utils.set_random_seed(2)
    model = vit((64, 64, 1), 2, size="ti", depth=2, attention=False)
    images = rng.normal(size=(3, 64, 64, 1)).astype("float32")
    explainer = AttentionRollout(model)
    probabilities = explainer.attention(images)
    assert len(probabilities) == 2 and probabilities[0].shape == (3, 3, 17, 17)
    expected = _reference(model, images)
    grid = explainer.patch_flow(images).numpy()
    np.testing.assert_allclose(grid, expected, rtol=1e-4, atol=1e-6)
    maps = explainer(images, np.array([0, 1, 0]))
    assert maps.shape == (3, 64, 64) and maps.min() == pytest.approx(0.0) and maps.max() == pytest.approx(1.0)
    # Class-agnostic: another target gives the same map.
    np.testing.assert_allclose(explainer(images, np.array([1, 0, 1])), maps)
    peak = np.unravel_index(expected[0].argmax(), (4, 4))
    assert maps[0, 16 * peak[0] + 8, 16 * peak[1] + 8] == pytest.approx(1.0, abs=0.05)  # the peak patch stays the peak


def test_models_without_attention_layers_are_refused(tiny_model):
    with pytest.raises(ValueError, match="no keras.layers.MultiHeadAttention"):
        AttentionRollout(tiny_model)
