"""The CNN-RNN hybrid (issue 15): per-slice CNN, bidirectional GRU, slice attention as an explanation."""

import keras
import numpy as np
import pytest

from tfxmed.explain.registry import make_explainer
from tfxmed.models import attention_model, declared_spec
from tfxmed.models.cnn_rnn import AttentionPooling, cnn_rnn


def test_slice_attention_weights_sum_to_one_and_pool_the_gru_states(rng, tmp_path):
    keras.utils.set_random_seed(0)
    model = cnn_rnn((10, 16, 16, 1), 2, width=4, stages=2, units=8)
    assert declared_spec(model).attention_layer == "slice_attention"
    volumes = rng.normal(size=(3, 10, 16, 16, 1)).astype("float32")
    weights = attention_model(model).predict(volumes, verbose=0)
    assert weights.shape == (3, 10) and np.allclose(weights.sum(1), 1.0, atol=1e-5)
    states = keras.Model(model.inputs[0], model.get_layer("slice_gru").output).predict(volumes, verbose=0)
    pooled = keras.Model(model.inputs[0], model.get_layer("slice_pooling").output).predict(volumes, verbose=0)
    np.testing.assert_allclose(pooled, np.einsum("nd,ndf->nf", weights, states), rtol=1e-4, atol=1e-5)
    maps = make_explainer("gradcam", model)(volumes, np.array([0, 1, 0]))
    assert maps.shape == (3, 10, 16, 16) and np.isfinite(maps).all()
    model.save(tmp_path / "cnn_rnn.keras")
    loaded = keras.saving.load_model(tmp_path / "cnn_rnn.keras")
    np.testing.assert_allclose(loaded.predict(volumes, verbose=0), model.predict(volumes, verbose=0), atol=1e-5)
    assert AttentionPooling().compute_output_shape(((None, 10, 16), (None, 10))) == (None, 16)


def test_2d_inputs_are_refused():
    with pytest.raises(ValueError, match=r"volumes \[D, H, W, C\]"):
        cnn_rnn((16, 16, 1), 2)
