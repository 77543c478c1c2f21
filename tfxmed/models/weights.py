"""Pretrained weights: the ImageNet files `keras.applications` would download, and copying by layer name.

tfxmed never downloads weights while it builds a model (these machines, like many hospital ones, have
no internet). `model.weights: imagenet` reads the application's "notop" file from Keras' cache
(`$KERAS_HOME/models`, default `~/.keras/models`) and fails with the file's name and the folder to put
it in when it is not there: it never falls back to random weights.
"""

from __future__ import annotations

import os

import keras
import numpy as np

from tfxmed.errors import Refusal

__all__ = ["WeightsUnavailable", "imagenet_file", "init_from", "keras_models_dir", "transfer_weights_by_name"]

DOWNLOADS = "https://storage.googleapis.com/tensorflow/keras-applications/"


class WeightsUnavailable(Refusal):
    """Pretrained weights asked for that are not on this machine."""


def keras_models_dir() -> str:
    """Where `keras.utils.get_file` keeps the applications' weights."""
    return os.path.join(os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras"), "models")


def imagenet_file(filename: str) -> str:
    """The local path of an ImageNet weights file, or a `WeightsUnavailable` that says where to put it."""
    path = os.path.join(keras_models_dir(), filename)
    if not os.path.isfile(path):
        raise WeightsUnavailable(
            f"model.weights: imagenet needs '{filename}', which is not in {keras_models_dir()} and is not "
            "downloaded at run time. Copy it there from a machine with internet (keras.applications fetches it "
            f"from {DOWNLOADS}...), or set model.weights to a local weights file, or to none to train from scratch")
    return path


def transfer_weights_by_name(source: keras.Model, target: keras.Model) -> list[str]:
    """Copies weights of same-named layers; an RGB first conv is summed over colours for grayscale.

    Returns the names of the layers copied.
    """
    copied = []
    for layer in target.layers:
        try:
            source_layer = source.get_layer(layer.name)
        except ValueError:
            continue
        values = source_layer.get_weights()
        if not values:
            continue
        targets = layer.get_weights()
        if len(values) != len(targets):
            continue
        adapted = []
        for value, wanted in zip(values, targets):
            if value.shape != wanted.shape and value.ndim == 4 and value.shape[2] == 3 and wanted.shape[2] == 1:
                value = np.sum(value, axis=2, keepdims=True)  # grayscale = R + G + B contributions
            if value.shape != wanted.shape:
                break
            adapted.append(value)
        else:
            layer.set_weights(adapted)
            copied.append(layer.name)
    return copied


def init_from(model: keras.Model, source: keras.Model, origin: str) -> dict:
    """Copies `source`'s weights into `model` by layer name (`model.init_from`; `origin` names the run).

    Layers whose weights do not fit (a head for another number of classes) keep their initialisation;
    an RGB first kernel is summed for a grayscale model. Returns {"run", "copied", "kept"} (layers with
    weights), and refuses a source that copies nothing: that is never a fine-tuning anyone meant.
    """
    copied = transfer_weights_by_name(source, model)
    kept = [layer.name for layer in model.layers if layer.weights and layer.name not in copied]
    if not copied:
        raise WeightsUnavailable(f"model.init_from: no layer of '{origin}' ({source.name}) matches this "
                                 f"model ({model.name}) by name and shape; is it the same model.name?")
    return {"run": origin, "copied": copied, "kept": kept}
