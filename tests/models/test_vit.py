"""ViT-Ti/S/B (issue 14 §1): built at 64 and 224 px, the patch grid as the declared explain layer (class token
dropped), a training step, the CAM family, IG and attention rollout, and the consistency loss under mirrored."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import keras
import numpy as np
import pytest

from tests.helpers import REPO, TINY_CONFIG
from tests.test_distribute import MIRRORED_SCRIPT
from tfxmed.config import ConfigError, load_config
from tfxmed.explain.registry import make_explainer
from tfxmed.models import attention_model, build_model, declared_spec, logits_model
from tfxmed.models.vit import SIZES, vit


@pytest.fixture(scope="module")
def tiny_vit():
    keras.utils.set_random_seed(0)
    return vit((64, 64, 1), 2, size="ti", depth=2)


def test_the_grid_is_the_patch_tokens_at_the_last_block_s_input(tiny_vit):
    spec = declared_spec(tiny_vit)
    assert (spec.explain_layer, spec.attention_layer, spec.candidate_layers) == ("csam", "csam_spatial",
                                                                                 ("patch_tokens",))
    assert tiny_vit.get_layer("patch_tokens").output.shape[1:] == (4, 4, 192)  # 64 px / 16, class token dropped
    assert [layer.name for layer in tiny_vit.layers if "attention" in layer.name and "_" in layer.name][-1] == \
        "block2_attention"  # the grid feeds the last block
    x = np.random.default_rng(0).normal(size=(3, 64, 64, 1)).astype("float32")
    np.testing.assert_allclose(keras.ops.softmax(logits_model(tiny_vit).predict(x, verbose=0)),
                               tiny_vit.predict(x, verbose=0), atol=1e-5)
    assert attention_model(tiny_vit).predict(x, verbose=0).shape == (3, 4, 4, 1)


@pytest.mark.parametrize("size", sorted(SIZES))
def test_each_size_builds_at_224_px_with_its_width(size):
    model = vit((224, 224, 1), 3, size=size, depth=1, attention=False)
    assert declared_spec(model).explain_layer == "patch_tokens"
    assert model.get_layer("patch_tokens").output.shape[1:] == (14, 14, SIZES[size].width)
    assert model.get_layer("block1_attention").num_heads == SIZES[size].heads
    assert model.predict(np.zeros((1, 224, 224, 1), "float32"), verbose=0).shape == (1, 3)


def test_a_training_step_changes_it_and_every_explainer_reads_it(tiny_vit):
    model = keras.models.clone_model(tiny_vit)
    model.set_weights(tiny_vit.get_weights())
    rng = np.random.default_rng(1)
    images = rng.normal(size=(8, 64, 64, 1)).astype("float32")
    labels = np.eye(2, dtype="float32")[np.arange(8) % 2]
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.CategoricalCrossentropy())
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(images, labels, batch_size=4, epochs=1, verbose=0)
    assert math.isfinite(history.history["loss"][0])
    assert sum(not np.allclose(a, w.numpy()) for a, w in zip(before, model.trainable_weights)) > 0.9 * len(before)
    from tfxmed.models import declare_spec

    declare_spec(model, declared_spec(tiny_vit))
    for method in ("gradcam", "gradcampp", "layercam", "ig", "rollout"):
        maps = make_explainer(method, model)(images[:2], np.array([1, 0]))
        assert maps.shape == (2, 64, 64) and np.all(np.isfinite(maps)), method
        assert maps.std() > 0, f"{method} gives a flat map"
    tokens = make_explainer("gradcam", model, layer="patch_tokens")(images[:2], np.array([1, 0]))
    assert tokens.std() > 0  # Grad-CAM on the patch tokens themselves, without CSAM


def test_the_config_builds_it_and_refuses_what_it_cannot_build():
    config = load_config(None, ["model.name=vit", "model.vit.size=ti", "model.vit.depth=2", "model.vit.patch_size=8",
                                "data.image_size=32"])
    model = build_model(config.model, (32, 32, 1), 4, True)
    assert model.get_layer("patch_tokens").output.shape[1:3] == (4, 4) and model.output.shape == (None, 4)
    with pytest.raises(ConfigError, match="multiple of model.vit.patch_size=16"):
        load_config(None, ["model.name=vit", "data.image_size=40"])
    with pytest.raises(ConfigError, match="'imagenet' has no weights for model.name=vit"):
        load_config(None, ["model.name=vit", "model.weights=imagenet", "data.image_size=64"])


@pytest.mark.slow
def test_mirrored_strategy_trains_it_with_the_consistency_loss(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, TINY_CONFIG, str(tmp_path), "model.name=vit", "model.vit.size=ti",
         "model.vit.depth=2", "model.vit.patch_size=8", "train.consistency.enabled=true", "train.steps_per_epoch=2"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2 and report["changed"] > 0
    assert math.isfinite(report["loss"]) and 0 < report["exp_loss"] < 1
