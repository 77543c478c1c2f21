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
    model.fit(volumes, np.eye(2, dtype="float32")[[0, 1, 0, 1]], batch_size=2, epochs=8, verbose=0)
    assert sum(not np.allclose(a, w.numpy()) for a, w in zip(before, model.trainable_weights)) > 0.9 * len(before)
    for method in ("gradcam", "gradcampp", "layercam", "ig"):
        maps = make_explainer(method, model)(volumes[:2], np.array([0, 1]))
        assert maps.shape == (2, 16, 32, 32) and np.isfinite(maps).all() and maps.std() > 0, method


def test_no_border_is_preferred_a_mirrored_volume_gives_mirrored_features(rng):
    # With mirror-symmetric kernels, only padding can tell the two borders of an axis apart. A strided
    # 'same' convolution pads one side of an even grid (the stem did), and Grad-CAM at `csam` then
    # peaked on that border of every volume.
    keras.utils.set_random_seed(0)
    model = resnet3d((8, 32, 32, 1), 2, width=4)
    kernels = [weight for weight in model.weights if len(weight.shape) == 5]  # CSAM's spatial convolution too
    for weight in kernels:
        kernel = weight.numpy()
        for axis in (0, 1, 2):
            kernel = 0.5 * (kernel + np.flip(kernel, axis))
        weight.assign(kernel)
    volume = rng.normal(size=(1, 8, 32, 32, 1)).astype("float32")
    for axis in (1, 2, 3):  # mirror-symmetric along every axis
        volume = volume + np.flip(volume, axis)
    features = keras.Model(model.inputs, [model.get_layer(name).output for name in
                                          ("stem_relu", "stage1_out", "stage3_out", "csam")])
    for name, output in zip(("stem_relu", "stage1_out", "stage3_out", "csam"), features.predict(volume, verbose=0)):
        assert output.std() > 0, name
        for axis in (1, 2, 3):
            np.testing.assert_allclose(output, np.flip(output, axis), rtol=1e-4, atol=1e-5, err_msg=f"{name} {axis}")


def test_2d_inputs_and_imagenet_weights_are_refused():
    with pytest.raises(ValueError, match=r"volumes \[D, H, W, C\]"):
        resnet3d((32, 32, 1), 2)
    with pytest.raises(ValueError, match="no 3-D weights"):
        resnet3d((8, 16, 16, 1), 2, width=4, weights="imagenet")
