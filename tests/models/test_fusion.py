"""Feature fusion (issue 14 §4): two backbones on one image, pooled features concatenated before one head,
explainable per branch (CAM at each branch's layer) and as a whole (IG)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tfxmed.config import ConfigError, load_config
from tfxmed.explain.registry import make_explainer
from tfxmed.models import build_model, declared_spec, model_spec

MEMBERS = ["model.name=fusion", "model.fusion.members=[small_cnn, vgg16]", "data.image_size=32",
           "model.small_cnn.width=8", "model.small_cnn.blocks=[1, 1]"]


@pytest.fixture(scope="module")
def fused():
    keras.utils.set_random_seed(0)
    config = load_config(None, MEMBERS).model
    return config, build_model(config, (32, 32, 1), 2, False)


def test_each_branch_is_its_backbone_on_the_shared_image_and_the_head_reads_both(fused):
    config, model = fused
    assert declared_spec(model) == model_spec(config)  # what load_run re-attaches
    assert declared_spec(model).explain_layer == "b0_csam" and declared_spec(model).candidate_layers == ("b1_csam",)
    assert model.get_layer("fused").output.shape[-1] == 16 + 512  # small_cnn's last stage (8·2) + VGG16's
    # A branch computes exactly what its backbone computes: copy the branch's weights into a fresh vgg16.
    vgg = build_model(load_config(None, ["model.name=vgg16", "data.image_size=32"]).model, (32, 32, 1), 2, False)
    for layer in vgg.layers:
        if layer.weights and layer.name != "logits":  # the fusion has one head of its own
            layer.set_weights(model.get_layer("b1_" + layer.name).get_weights())
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 1)).astype("float32")
    branch = keras.Model(model.inputs, model.get_layer("b1_csam").output)
    np.testing.assert_allclose(branch(x), keras.Model(vgg.inputs, vgg.get_layer("csam").output)(x), atol=1e-5)


def test_it_trains_saves_and_is_explained_per_branch_and_as_a_whole(fused, tmp_path):
    _, model = fused
    rng = np.random.default_rng(1)
    images = rng.normal(size=(8, 32, 32, 1)).astype("float32")
    labels = np.eye(2, dtype="float32")[np.arange(8) % 2]
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.CategoricalCrossentropy())
    before = model.get_layer("b1_block1_conv1").get_weights()[0].copy()
    model.fit(images, labels, batch_size=4, epochs=1, verbose=0)
    assert not np.allclose(before, model.get_layer("b1_block1_conv1").get_weights()[0])
    maps = {name: make_explainer("gradcam", model, layer=name)(images[:2], np.array([1, 0]))
            for name in ("b0_csam", "b1_csam")}
    maps["ig"] = make_explainer("ig", model)(images[:2], np.array([1, 0]))
    for name, value in maps.items():
        assert value.shape == (2, 32, 32) and np.all(np.isfinite(value)) and value.std() > 0, name
    assert not np.allclose(maps["b0_csam"], maps["b1_csam"])  # each branch has its own view
    model.save(tmp_path / "fusion.keras")
    reloaded = keras.saving.load_model(tmp_path / "fusion.keras")
    np.testing.assert_allclose(reloaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)


def test_members_must_be_distinct_known_backbones():
    with pytest.raises(ConfigError, match="model.fusion.members: distinct names"):
        load_config(None, ["model.name=fusion", "model.fusion.members=[vgg16, vgg16]"])
    with pytest.raises(ConfigError, match="expected a list of >= 2 items"):
        load_config(None, ["model.name=fusion", "model.fusion.members=[vgg16]"])
    with pytest.raises(ConfigError, match="vgg16 needs >= 32 px"):
        load_config(None, [*MEMBERS[:2], "data.image_size=16"])
