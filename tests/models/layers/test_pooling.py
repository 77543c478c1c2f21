"""Global pooling heads: LSE lies between the mean and the max; the factory builds each, and it reloads."""

import keras
import numpy as np
import pytest

from tfxmed.config import POOLINGS, ModelConfig, ResNetAttentionConfig, SmallCnnConfig
from tfxmed.models import build_model
from tfxmed.models.layers import LogSumExpPooling2D, global_pooling


def test_lse_runs_from_the_mean_to_the_max_and_is_stable_for_large_inputs(rng):
    x = rng.random((3, 5, 4, 6)).astype("float32")
    mean, peak = x.mean(axis=(1, 2)), x.max(axis=(1, 2))
    np.testing.assert_allclose(LogSumExpPooling2D(1e-3)(x), mean, atol=1e-3)
    np.testing.assert_allclose(LogSumExpPooling2D(1e4)(x), peak, atol=1e-3)
    middle = np.asarray(LogSumExpPooling2D(5.0)(x))
    assert np.all(middle > mean) and np.all(middle < peak)
    # exp(5 · 1000) overflows float32; the max-shifted form does not
    assert np.all(np.isfinite(LogSumExpPooling2D(5.0)(x + 1000.0)))
    with pytest.raises(ValueError, match="r > 0"):
        LogSumExpPooling2D(0.0)


def test_global_pooling_names_its_layer_and_refuses_an_unknown_kind(rng):
    features = keras.Input((4, 4, 3))
    assert [global_pooling(features, kind).shape[-1] for kind in POOLINGS] == [3, 3, 3]
    with pytest.raises(ValueError, match="avg, max, lse; got 'median'"):
        global_pooling(features, "median")


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("name", ["small_cnn", "resnet50_attention"])
def test_model_pooling_reaches_the_builder_and_survives_a_save(name, pooling, rng, tmp_path):
    config = ModelConfig(name=name, pooling=pooling, lse_r=3.0, small_cnn=SmallCnnConfig(blocks=[1, 1], width=4),
                         resnet50_attention=ResNetAttentionConfig(blocks=[1, 1, 1, 1], width=4))
    model = build_model(config, (32, 32, 1), 2, False)
    layer = model.get_layer(f"{pooling}_pool")
    if pooling == "lse":
        assert layer.r == 3.0
    path = str(tmp_path / "model.keras")
    model.save(path)
    x = rng.normal(size=(2, 32, 32, 1)).astype("float32")
    np.testing.assert_allclose(keras.models.load_model(path).predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
