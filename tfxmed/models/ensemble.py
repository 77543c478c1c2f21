"""Ensembles of trained tfxmed classifiers as one Keras functional model (a fixed combination of logits).

`build_ensemble(members)` copies every member onto one shared input (layers renamed `m<i>_<name>`, weights
copied), averages the members' declared logits in a layer named `logits` (or, given a `combiner` (W, b),
computes concat(member logits) · W + b there: a weighted mean or a stacking logistic regression fitted on
validation, `tfxmed.experiments.ensembling`), and ends in the members' own activation (softmax or
sigmoid). The result is a plain functional model: it saves to `.keras`, loads without custom code
beyond the members' layers, and serves, evaluates and calibrates like any single model. Combining
logits (not probabilities) keeps one pre-activation score for calibration.

Its `ModelSpec` explains `members` by default: the CAM family gives the weighted mean of the members'
normalised maps, each at its member's own layer and upsampled to the input, with the members' shares
of the combination as weights (`member_weights`); each member's layer alone is a candidate for
`explain.layer` and `auto`. Gradient methods (saliency, IG, SmoothGrad) explain the whole ensemble.
"""

from __future__ import annotations

import keras
import numpy as np

from tfxmed.models.factory import logits_model
from tfxmed.models.fusion import prefixed_copy
from tfxmed.models.spec import MEMBERS, ModelSpec, declare_spec, declared_spec

__all__ = ["build_ensemble", "member_prefix", "member_weights"]


def member_prefix(index: int) -> str:
    return f"m{index}_"


def _final_activation(model: keras.Model) -> str:
    activation = getattr(model.layers[-1], "activation", None)
    name = getattr(activation, "__name__", "")
    if name not in ("softmax", "sigmoid"):
        raise ValueError(f"member '{model.name}' must end in a softmax or sigmoid layer, got {model.layers[-1].name}")
    return name


def member_weights(members: int, classes: int, combiner=None) -> np.ndarray:
    """Each member's share of the ensemble's logits: 1/M for the mean; for a combiner (W, b), the L1 norm of
    its block of W (w_m·K for a weighted mean, |coefficients| for stacking), normalised to sum to 1."""
    if combiner is None:
        return np.full(members, 1.0 / members)
    kernel = np.abs(np.asarray(combiner[0], np.float64)).reshape(members, classes, -1)
    shares = kernel.sum(axis=(1, 2))
    return shares / shares.sum() if shares.sum() > 0 else np.full(members, 1.0 / members)


def build_ensemble(members: list[keras.Model], name: str = "ensemble", combiner=None) -> keras.Model:
    """One model whose logits are the mean of the members' logits, or concat(logits) · W + b for a
    `combiner` (W [members · classes, classes], b [classes]); members must share channels and classes.

    Members may differ in input size: the ensemble takes the largest, and each smaller member sees it
    resized to its own (`m<i>_resize`, bilinear with antialiasing, as the pipeline resizes). Its spec
    explains the members' maps at their own layers, weighted by `member_weights` (`ModelSpec.member_layers`).
    """
    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
    shapes = [tuple(m.inputs[0].shape[1:]) for m in members]
    outputs = {tuple(m.outputs[0].shape[1:]) for m in members}
    activations = {_final_activation(m) for m in members}
    if len({shape[-1] for shape in shapes}) != 1 or len(outputs) != 1 or len(activations) != 1:
        raise ValueError(f"ensemble members differ: input shapes {sorted(set(shapes))}, output shapes {outputs}, "
                         f"activations {activations}")
    specs = [declared_spec(m) for m in members]
    if None in specs:
        raise ValueError("every ensemble member must declare a ModelSpec (load members with tfxmed.runs.load_run)")
    if len(shapes[0]) == 4 and len(set(shapes)) > 1:  # volumes [D, H, W, C]: resizing inside is 2-D only
        raise ValueError(f"volume ensemble members must share their input shape, got {sorted(set(shapes))}")
    largest = max(shapes, key=lambda shape: int(np.prod(shape[:-1])))
    image = keras.Input(largest, name="image")
    member_logits = []
    for index, (member, shape) in enumerate(zip(members, shapes)):
        member_logits.append(prefixed_copy(logits_model(member), image, member_prefix(index),
                                           None if shape == largest else shape[-3:-1]))
    classes = member_logits[0].shape[-1]
    if combiner is None:
        logits = keras.layers.Average(name="logits")(member_logits)
    else:
        kernel, bias = (np.asarray(value, "float32") for value in combiner)
        if kernel.shape != (len(members) * classes, classes) or bias.shape != (classes,):
            raise ValueError(f"combiner: W must be [{len(members) * classes}, {classes}] and b [{classes}], got "
                             f"{kernel.shape} and {bias.shape}")
        joined = keras.layers.Concatenate(name="member_logits")(member_logits)
        combine = keras.layers.Dense(classes, name="logits", trainable=False)
        logits = combine(joined)
        combine.set_weights([kernel, bias])
    probabilities = keras.layers.Activation(activations.pop(), name="probabilities")(logits)
    ensemble = keras.Model(image, probabilities, name=name)
    explain = tuple(member_prefix(i) + spec.explain_layer for i, spec in enumerate(specs))
    weights = tuple(float(w) for w in member_weights(len(members), classes, combiner))
    return declare_spec(ensemble, ModelSpec(MEMBERS, "logits", None, explain, member_layers=explain,
                                            member_weights=weights))
