"""The small CNN (`tfxmed.models.small_cnn`): its stages, CSAM after the last one, and its heads."""

import keras
import numpy as np

from tfxmed.config import ModelConfig, SmallCnnConfig
from tfxmed.models import build_model
from tfxmed.models.small_cnn import small_cnn


def test_multi_label_head_is_sigmoid(rng):
    config = ModelConfig(name="small_cnn", small_cnn=SmallCnnConfig(blocks=[1, 1]))
    model = build_model(config, (16, 16, 1), 3, multi_label=True)
    out = model.predict(rng.normal(size=(4, 16, 16, 1)).astype("float32"), verbose=0)
    assert out.shape == (4, 3) and not np.allclose(out.sum(-1), 1.0)


def test_the_tiny_model_has_three_stages_then_csam(tiny_model, rng):
    names = [layer.name for layer in tiny_model.layers]
    convolutions = [name for name in names if name.startswith(("conv", "last_conv")) and name.count("_") <= 1]
    assert convolutions == ["conv1_1", "conv2_1", "last_conv"]
    assert [tiny_model.get_layer(n).filters for n in convolutions] == [8, 16, 32]  # width 8, doubling per stage
    assert names.index("last_conv_relu") < names.index("csam") < names.index("avg_pool")
    assert tiny_model.get_layer("csam").output.shape == (None, 8, 8, 32)  # two poolings of 32 px
    probabilities = tiny_model.predict(rng.normal(size=(3, 32, 32, 1)).astype("float32"), verbose=0)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)  # softmax for single-label


def test_probabilities_stay_float32_under_mixed_precision():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = small_cnn((16, 16, 1), 2, width=4, blocks=(1,))
    finally:
        keras.config.set_dtype_policy(previous)
    assert model.get_layer("logits").compute_dtype == "bfloat16"
    assert model.output.dtype == "float32"  # losses and metrics see float32 probabilities
