import keras
import numpy as np
import pytest

from tfxmed.config import ModelConfig, SmallCnnConfig
from tfxmed.explain import make_explainer
from tfxmed.models import build_model, declared_spec, logits_model, model_spec
from tfxmed.models.ensemble import build_ensemble


def _member(seed, multi_label=False):
    keras.utils.set_random_seed(seed)
    config = ModelConfig(name="small_cnn", attention=True, small_cnn=SmallCnnConfig(blocks=[1, 1], width=4))
    return build_model(config, (24, 24, 1), 3, multi_label)


@pytest.mark.parametrize("multi_label", [False, True])
def test_the_ensemble_averages_the_members_logits_and_keeps_their_activation(rng, multi_label, tmp_path):
    members = [_member(seed, multi_label) for seed in (1, 2, 3)]
    ensemble = build_ensemble(members)
    images = rng.random((5, 24, 24, 1)).astype("float32")
    logits = np.mean([logits_model(m).predict(images, verbose=0) for m in members], axis=0)
    np.testing.assert_allclose(logits_model(ensemble).predict(images, verbose=0), logits, atol=1e-5)
    expected = 1 / (1 + np.exp(-logits)) if multi_label else np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(ensemble.predict(images, verbose=0), expected, atol=1e-5)
    # It is a plain functional model: saved and loaded back, it predicts the same.
    ensemble.save(tmp_path / "ensemble.keras")
    np.testing.assert_allclose(keras.saving.load_model(tmp_path / "ensemble.keras").predict(images, verbose=0),
                               expected, atol=1e-5)


def test_the_ensemble_declares_its_layers_and_is_explained(rng):
    members = [_member(seed) for seed in (1, 2)]
    ensemble = build_ensemble(members)
    spec, member = declared_spec(ensemble), model_spec(ModelConfig(name="small_cnn", attention=True))
    assert spec.explain_layer == "m0_" + member.explain_layer
    assert spec.candidate_layers == ("m1_" + member.explain_layer,)
    images = rng.random((2, 24, 24, 1)).astype("float32")
    for method in ("gradcam", "ig"):
        maps = make_explainer(method, ensemble)(images, np.array([0, 1]))
        assert maps.shape == (2, 24, 24) and np.isfinite(maps).all() and maps.max() > 0


def test_members_that_cannot_be_averaged_are_refused():
    with pytest.raises(ValueError, match="at least 2"):
        build_ensemble([_member(1)])
    other = build_model(ModelConfig(name="small_cnn", small_cnn=SmallCnnConfig(blocks=[1, 1], width=4)), (32, 32, 1), 3,
                        False)
    with pytest.raises(ValueError, match="members differ"):
        build_ensemble([_member(1), other])
    bare = keras.Model(*(lambda x: (x, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(x))))(
        keras.Input((24, 24, 1))))
    with pytest.raises(ValueError, match="declare a ModelSpec"):
        build_ensemble([_member(1), bare])
