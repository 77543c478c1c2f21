"""The classification head every backbone ends in: the named layers the ModelSpec relies on."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tfxmed.models.layers import classification_head


@pytest.mark.parametrize("multi_label", [False, True])
def test_the_head_pools_drops_and_scores_into_named_layers(multi_label, rng):
    features = keras.Input((4, 4, 8))
    model = keras.Model(features, classification_head(features, 3, multi_label, dropout=0.5, pooling="max"))
    assert [layer.name for layer in model.layers[1:]] == ["max_pool", "dropout", "logits", "probabilities"]
    assert model.get_layer("dropout").rate == 0.5
    x = rng.normal(size=(2, 4, 4, 8)).astype("float32")
    logits = model.get_layer("logits")(x.max(axis=(1, 2)))
    expected = keras.ops.sigmoid(logits) if multi_label else keras.ops.softmax(logits)
    np.testing.assert_allclose(model(x, training=False), expected, rtol=1e-5, atol=1e-6)


def test_the_probabilities_stay_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        features = keras.Input((4, 4, 8))
        model = keras.Model(features, classification_head(features, 2, False, dropout=0.0))
        assert model.get_layer("logits").compute_dtype == "bfloat16"
        assert model.output.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_group_softmax_normalises_each_group_in_place_and_round_trips(rng, tmp_path):
    from tfxmed.models.layers.head import GroupSoftmax, label_groups_of, with_group_softmax

    groups = [[0, 3], [1, 2, 4]]  # not contiguous: outputs keep their order
    logits = rng.normal(0, 2, (5, 5)).astype("float32")
    probabilities = GroupSoftmax(groups)(logits).numpy()
    for group in groups:
        expected = np.exp(logits[:, group]) / np.exp(logits[:, group]).sum(-1, keepdims=True)
        np.testing.assert_allclose(probabilities[:, group], expected, rtol=1e-5)
    image = keras.Input((4, 4, 2))
    model = keras.Model(image, classification_head(image, 5, True, 0.0))
    grouped = with_group_softmax(model, groups)
    assert label_groups_of(grouped) == groups and label_groups_of(model) is None
    grouped.save(tmp_path / "grouped.keras")
    loaded = keras.saving.load_model(tmp_path / "grouped.keras")
    batch = rng.random((3, 4, 4, 2)).astype("float32")
    np.testing.assert_allclose(loaded.predict(batch, verbose=0), grouped.predict(batch, verbose=0), atol=1e-6)
    assert label_groups_of(loaded) == groups
    for bad in ([[0, 1], [1, 2, 3, 4]], [[0], [1, 2, 3, 4]], [[0, 1], [2, 3]]):
        with pytest.raises(ValueError, match="disjoint groups"):
            with_group_softmax(model, bad)
