"""Ensembles of trained tfxmed classifiers as one Keras functional model (a fixed combination of logits).

`build_ensemble(members)` copies every member onto one shared input (layers renamed `m<i>_<name>`, weights
copied), averages the members' declared logits in a layer named `logits` (or, given a `combiner` (W, b),
computes concat(member logits) · W + b there: a weighted mean or a stacking logistic regression fitted on
validation, `tfxmed.experiments.ensembling`), and ends in the members' own activation (softmax or
sigmoid). The result is a plain functional model: it saves to `.keras`, loads without custom code
beyond the members' layers, and serves, evaluates and calibrates like any single model. Combining
logits (not probabilities) keeps one pre-activation score for calibration.

Its `ModelSpec` explains the first member's feature layer by default, with the other members' as
candidates: a CAM shows one member's view, while gradient methods (saliency, IG, SmoothGrad) and the
fusion explain the whole ensemble.
"""

from __future__ import annotations

import keras
import numpy as np

from tfxmed.models.factory import logits_model
from tfxmed.models.fusion import prefixed_copy
from tfxmed.models.spec import ModelSpec, declare_spec, declared_spec

__all__ = ["build_ensemble", "member_prefix"]


def member_prefix(index: int) -> str:
    return f"m{index}_"


def _final_activation(model: keras.Model) -> str:
    activation = getattr(model.layers[-1], "activation", None)
    name = getattr(activation, "__name__", "")
    if name not in ("softmax", "sigmoid"):
        raise ValueError(f"member '{model.name}' must end in a softmax or sigmoid layer, got {model.layers[-1].name}")
    return name


def build_ensemble(members: list[keras.Model], name: str = "ensemble", combiner=None) -> keras.Model:
    """One model whose logits are the mean of the members' logits, or concat(logits) · W + b for a
    `combiner` (W [members · classes, classes], b [classes]); members must share input and classes."""
    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
    shapes = {tuple(m.inputs[0].shape[1:]) for m in members}
    outputs = {tuple(m.outputs[0].shape[1:]) for m in members}
    activations = {_final_activation(m) for m in members}
    if len(shapes) != 1 or len(outputs) != 1 or len(activations) != 1:
        raise ValueError(f"ensemble members differ: input shapes {shapes}, output shapes {outputs}, "
                         f"activations {activations}")
    specs = [declared_spec(m) for m in members]
    if None in specs:
        raise ValueError("every ensemble member must declare a ModelSpec (load members with tfxmed.runs.load_run)")
    image = keras.Input(shapes.pop(), name="image")
    member_logits = []
    for index, member in enumerate(members):
        member_logits.append(prefixed_copy(logits_model(member), image, member_prefix(index)))
    if combiner is None:
        logits = keras.layers.Average(name="logits")(member_logits)
    else:
        kernel, bias = (np.asarray(value, "float32") for value in combiner)
        classes = member_logits[0].shape[-1]
        if kernel.shape != (len(members) * classes, classes) or bias.shape != (classes,):
            raise ValueError(f"combiner: W must be [{len(members) * classes}, {classes}] and b [{classes}], got "
                             f"{kernel.shape} and {bias.shape}")
        joined = keras.layers.Concatenate(name="member_logits")(member_logits)
        combine = keras.layers.Dense(classes, name="logits", trainable=False)
        logits = combine(joined)
        combine.set_weights([kernel, bias])
    probabilities = keras.layers.Activation(activations.pop(), name="probabilities")(logits)
    ensemble = keras.Model(image, probabilities, name=name)
    explain = [member_prefix(i) + spec.explain_layer for i, spec in enumerate(specs)]
    return declare_spec(ensemble, ModelSpec(explain[0], "logits", None, tuple(explain[1:])))
