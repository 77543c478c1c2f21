import keras
import numpy as np
import pytest

from tfxmed.config import ModelConfig, SmallCnnConfig
from tfxmed.explain import make_explainer
from tfxmed.metrics.maps import minmax_per_map
from tfxmed.models import build_model, declared_spec, logits_model, model_spec
from tfxmed.models.ensemble import build_ensemble, member_weights
from tfxmed.models.spec import MEMBERS


def _member(seed, multi_label=False, size=24):
    keras.utils.set_random_seed(seed)
    config = ModelConfig(name="small_cnn", attention=True, small_cnn=SmallCnnConfig(blocks=[1, 1], width=4))
    return build_model(config, (size, size, 1), 3, multi_label)


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


def test_the_ensemble_is_explained_as_the_weighted_mean_of_its_members_normalised_maps(rng):
    """Grad-CAM of the ensemble = Σ w_m · minmax(Grad-CAM of member m at its own layer) / Σ w_m, with the
    members' shares of the combination as weights; each member's layer alone stays a candidate."""
    members = [_member(seed) for seed in (1, 2)]
    kernel = np.concatenate([0.25 * np.eye(3), 0.75 * np.eye(3)])  # a weighted mean: w = (0.25, 0.75)
    ensemble = build_ensemble(members, combiner=(kernel, np.zeros(3)))
    spec, member = declared_spec(ensemble), model_spec(ModelConfig(name="small_cnn", attention=True))
    layers = ("m0_" + member.explain_layer, "m1_" + member.explain_layer)
    assert spec.explain_layer == MEMBERS and spec.member_layers == layers == spec.candidate_layers
    np.testing.assert_allclose(spec.member_weights, (0.25, 0.75))
    images, targets = rng.random((3, 24, 24, 1)).astype("float32"), np.array([0, 1, 2])
    own = [minmax_per_map(make_explainer("gradcam", m)(images, targets)) for m in members]
    maps = make_explainer("gradcam", ensemble)(images, targets)
    np.testing.assert_allclose(maps, 0.25 * own[0] + 0.75 * own[1], atol=1e-4)
    alone = make_explainer("gradcam", ensemble, default_layer=layers[1])(images, targets)  # one member's view
    np.testing.assert_allclose(alone, own[1], atol=1e-4)
    for method in ("gradcampp", "ig"):
        maps = make_explainer(method, ensemble)(images, targets)
        assert maps.shape == (3, 24, 24) and np.isfinite(maps).all() and maps.max() > 0


def test_members_of_other_input_sizes_see_the_image_resized_to_their_own(rng):
    small, large = _member(1, size=24), _member(2, size=32)
    ensemble = build_ensemble([small, large])
    assert tuple(ensemble.inputs[0].shape[1:]) == (32, 32, 1)
    images = rng.random((4, 32, 32, 1)).astype("float32")
    resized = keras.layers.Resizing(24, 24, interpolation="bilinear", antialias=True)(images)
    expected = (logits_model(small).predict(resized, verbose=0) + logits_model(large).predict(images, verbose=0)) / 2
    np.testing.assert_allclose(logits_model(ensemble).predict(images, verbose=0), expected, atol=1e-5)
    maps = make_explainer("gradcam", ensemble)(images, np.array([0, 1, 2, 0]))
    assert maps.shape == (4, 32, 32) and np.isfinite(maps).all()


def test_member_weights_are_each_member_s_share_of_the_combination():
    assert member_weights(3, 2).tolist() == pytest.approx([1 / 3] * 3)
    stacking = np.array([[0.0, -1.0], [0.0, 1.0], [0.0, 3.0], [0.0, -3.0]])  # coefficients of a 2-class regression
    assert member_weights(2, 2, (stacking, np.zeros(2))).tolist() == pytest.approx([0.25, 0.75])


def test_members_that_cannot_be_averaged_are_refused():
    with pytest.raises(ValueError, match="at least 2"):
        build_ensemble([_member(1)])
    other = build_model(ModelConfig(name="small_cnn", small_cnn=SmallCnnConfig(blocks=[1, 1], width=4)), (24, 24, 1), 2,
                        False)
    with pytest.raises(ValueError, match="members differ"):
        build_ensemble([_member(1), other])
    bare = keras.Model(*(lambda x: (x, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(x))))(
        keras.Input((24, 24, 1))))
    with pytest.raises(ValueError, match="declare a ModelSpec"):
        build_ensemble([_member(1), bare])
