"""The 3-D ResNet with 3-D CSAM (issue 15): declared layers, shapes, a training step and 3-D explanations."""

import keras
import numpy as np
import pytest

from tfxmed.explain.registry import make_explainer
from tfxmed.models import attention_model, declared_spec, logits_model
from tfxmed.models.resnet3d import resnet3d


def test_csam_follows_stage_three_and_the_cam_family_explains_volumes(rng):
    keras.utils.set_random_seed(0)
    model = resnet3d((16, 32, 32, 1), 2, width=8)
    spec = declared_spec(model)
    assert (spec.explain_layer, spec.attention_layer) == ("csam", "csam_spatial")
    assert model.get_layer("csam").output.shape[1:4] == (4, 4, 4)  # slices / 4, rows and columns / 8
    volumes = rng.normal(size=(4, 16, 32, 32, 1)).astype("float32")
    volumes[1::2, 6:10, 10:18, 12:20] += 3.0  # class 1: a bright block the trained model can find
    np.testing.assert_allclose(keras.ops.softmax(logits_model(model).predict(volumes, verbose=0)),
                               model.predict(volumes, verbose=0), atol=1e-5)
    assert attention_model(model).predict(volumes, verbose=0).shape == (4, 4, 4, 4, 1)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.fit(volumes, np.eye(2, dtype="float32")[[0, 1, 0, 1]], batch_size=2, epochs=4, verbose=0)
    assert sum(not np.allclose(a, w.numpy()) for a, w in zip(before, model.trainable_weights)) > 0.9 * len(before)
    for method in ("gradcam", "gradcampp", "layercam", "ig"):
        maps = make_explainer(method, model)(volumes[:2], np.array([0, 1]))
        assert maps.shape == (2, 16, 32, 32) and np.isfinite(maps).all() and maps.std() > 0, method


def test_2d_inputs_and_imagenet_weights_are_refused():
    with pytest.raises(ValueError, match=r"volumes \[D, H, W, C\]"):
        resnet3d((32, 32, 1), 2)
    with pytest.raises(ValueError, match="no 3-D weights"):
        resnet3d((8, 16, 16, 1), 2, width=4, weights="imagenet")
