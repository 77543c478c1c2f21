import keras
import numpy as np
import pytest

from tfxmed.models.layers import ChannelAttention, SpatialAttention, channel_spatial_attention


def test_channel_attention_matches_formula(rng):
    layer = ChannelAttention(reduction=2)
    x = rng.normal(size=(2, 3, 3, 4)).astype("float32")
    out = layer(x).numpy()
    hidden, output = layer.hidden_dense, layer.output_dense
    w1, b1 = [v.numpy() for v in hidden.weights]
    w2, b2 = [v.numpy() for v in output.weights]
    mlp = lambda v: np.maximum(v @ w1 + b1, 0) @ w2 + b2  # noqa: E731
    scores = mlp(x.mean(axis=(1, 2))) + mlp(x.max(axis=(1, 2)))
    expected = x / (1 + np.exp(-scores))[:, None, None, :]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_spatial_attention_is_a_probability_map(rng):
    x = rng.normal(size=(2, 5, 6, 8)).astype("float32")
    attention = SpatialAttention(kernel_size=3)(x).numpy()
    assert attention.shape == (2, 5, 6, 1)
    assert np.all((attention > 0) & (attention < 1))


def test_csam_block_rescales_features_and_serialises(tmp_path, rng):
    inputs = keras.Input((6, 6, 8))
    outputs = channel_spatial_attention(inputs, name="csam", reduction=4, kernel_size=3)
    model = keras.Model(inputs, outputs)
    x = rng.normal(size=(1, 6, 6, 8)).astype("float32")
    refined = model.get_layer("csam_channel")(x)
    spatial = model.get_layer("csam_spatial")(refined)
    np.testing.assert_allclose(model(x).numpy(), (refined * spatial).numpy(), rtol=1e-5)
    path = str(tmp_path / "csam.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(reloaded(x).numpy(), model(x).numpy(), rtol=1e-6)
    assert reloaded.get_layer("csam_channel").get_config()["reduction"] == 4


def test_invalid_reduction_is_rejected():
    with pytest.raises(ValueError, match="reduction must be >= 1"):
        ChannelAttention(reduction=0)
