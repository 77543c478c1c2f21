"""Pretrained weights (issue 14 §2): ImageNet files read from Keras' cache, never downloaded, with a clear error
naming the file when absent; RGB kernels summed over colours for grayscale inputs."""

from __future__ import annotations

import os

import h5py
import keras
import numpy as np
import pytest
from keras.src.legacy.saving import legacy_h5_format  # writes the legacy .h5 format keras.applications ships in

from tfxmed.models.applications import BACKBONES, application
from tfxmed.models.resnet_attention import resnet_attention
from tfxmed.models.weights import WeightsUnavailable, imagenet_file, keras_models_dir, transfer_weights_by_name


def test_rgb_stem_weights_summed_for_grayscale():
    source = resnet_attention((32, 32, 3), 2, attention=False, blocks=(1, 1, 1, 1), width=8)
    target = resnet_attention((32, 32, 1), 2, attention=True, blocks=(1, 1, 1, 1), width=8)
    copied = transfer_weights_by_name(source, target)
    assert "conv1_conv" in copied and "conv5_block1_3_conv" in copied
    kernel = source.get_layer("conv1_conv").get_weights()[0]
    np.testing.assert_allclose(
        target.get_layer("conv1_conv").get_weights()[0], kernel.sum(axis=2, keepdims=True), rtol=1e-6)


def test_missing_imagenet_weights_name_the_file_and_the_folder_and_never_fall_back(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert keras_models_dir() == str(tmp_path / "models")
    for build in (lambda: application("densenet121", (32, 32, 1), 2, weights="imagenet"),
                  lambda: resnet_attention((32, 32, 1), 2, weights="imagenet")):
        with pytest.raises(WeightsUnavailable, match=rf"not in {tmp_path / 'models'} and is not downloaded"):
            build()
    with pytest.raises(WeightsUnavailable, match=r"'efficientnetb0_notop\.h5'"):
        imagenet_file(BACKBONES["efficientnetb0"].weights_file)


def test_imagenet_weights_in_the_cache_are_copied_into_a_grayscale_backbone(tmp_path, monkeypatch):
    """A notop file in keras.applications' own format, made here, stands in for the downloaded one."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    os.makedirs(keras_models_dir())
    keras.utils.set_random_seed(3)
    pretrained = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    with h5py.File(os.path.join(keras_models_dir(), BACKBONES["vgg16"].weights_file), "w") as stream:
        legacy_h5_format.save_weights_to_hdf5_group(stream, pretrained)
    model = application("vgg16", (32, 32, 1), 2, weights="imagenet")
    rgb = pretrained.get_layer("block1_conv1").get_weights()[0]
    np.testing.assert_allclose(model.get_layer("block1_conv1").get_weights()[0], rgb.sum(2, keepdims=True), rtol=1e-6)
    for name in ("block3_conv2", "block5_conv3"):
        for ours, theirs in zip(model.get_layer(name).get_weights(), pretrained.get_layer(name).get_weights()):
            np.testing.assert_array_equal(ours, theirs)


def test_a_weights_file_of_the_model_itself_loads(tmp_path):
    keras.utils.set_random_seed(4)
    trained = application("vgg16", (32, 32, 1), 2, attention=True)
    path = str(tmp_path / "vgg.weights.h5")
    trained.save_weights(path)
    loaded = application("vgg16", (32, 32, 1), 2, attention=True, weights=path)
    for ours, theirs in zip(loaded.get_weights(), trained.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
