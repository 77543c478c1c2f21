"""Calibrated probabilities: temperature scaling, and Platt scaling (two classes; per label for multi-label).

Clinicians read a probability as a risk, so every probability that leaves tfxmed (evaluate, the
report, the SavedModel signatures) is calibrated on the validation split:

- single-label (softmax): one temperature T, p = softmax(z / T) (Guo et al., 2017). T > 0 rescales all
  logits alike, so the ranking, the argmax and the AUC are unchanged; only the confidence moves.
- two classes (softmax): also Platt scaling of the logit difference, p₁ = σ(a·(z₁ − z₀) + b), a > 0.
  The bias corrects a model that over- or under-calls the positive class as a whole (temperature
  cannot); the order of the scores, hence the AUC, is unchanged, but the decision at p = 0.5 moves.
- multi-label (one sigmoid per label): per label, p = σ(a·z + b) with a > 0 (Platt, 1999; "vector
  scaling" with a bias). Monotone per label, so each label's AUC is unchanged.
- multi-label with a softmax per group of outputs (`label_groups`, CheXpert U-MultiClass): one
  temperature per group, p_g = softmax(z_g / T_g) ("group_temperature"); the dict carries the groups,
  and `apply` takes a softmax per group whatever the method (none included).

All are fitted by minimising the validation negative log-likelihood. `auto` takes per-label Platt for
multi-label, temperature for more than two classes, and for two classes whichever of temperature and
Platt has the lower out-of-fold NLL on validation (stratified 5-fold); Platt, with one parameter more,
must win by more than one standard error of the paired per-image difference, else temperature.

A run's calibration is fitted once and kept in RUN/calibration.json (`run_calibration`), so evaluate,
report and export apply the same numbers. Explanations are unaffected: they explain logits, and a
positive rescaling of a logit (plus a bias) leaves every normalised map the same.
"""

from __future__ import annotations

import json

import numpy as np
from scipy import optimize, special

from tfxmed.config_choices import CALIBRATION_METHODS

__all__ = ["fit", "apply", "apply_tf", "identity_for", "predict", "run_calibration", "IDENTITY", "CALIBRATION_METHODS"]

IDENTITY = {"method": "none"}
VERSION = 2  # bumped when `auto` chooses differently: a saved calibration of an older version is refitted
CV_FOLDS = 5  # `auto`'s choice between temperature and Platt for two classes (out-of-fold validation NLL)


def _nll_softmax(logits: np.ndarray, targets: np.ndarray, temperature: float) -> float:
    log_probabilities = special.log_softmax(logits / temperature, axis=-1)
    return float(-np.mean(np.sum(targets * log_probabilities, axis=-1)))


def _per_image_nll(logit: np.ndarray, target: np.ndarray, scale: float, bias: float) -> np.ndarray:
    z = scale * logit + bias
    return np.logaddexp(0.0, z) - target * z  # −[y log σ(z) + (1−y) log(1−σ(z))]


def _nll_sigmoid(logit: np.ndarray, target: np.ndarray, scale: float, bias: float) -> float:
    return float(np.mean(_per_image_nll(logit, target, scale, bias)))


def _fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    # One parameter: a bounded search over log T (T in [e^-4, e^4]).
    result = optimize.minimize_scalar(lambda log_t: _nll_softmax(logits, labels, np.exp(log_t)),
                                      bounds=(-4.0, 4.0), method="bounded")
    return float(np.exp(result.x))


def _fit_platt(logit: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    # a = exp(s) keeps the scores in the same order.
    result = optimize.minimize(lambda p: _nll_sigmoid(logit, target, np.exp(p[0]), p[1]), x0=[0.0, 0.0],
                               method="L-BFGS-B", bounds=[(-4.0, 4.0), (-20.0, 20.0)])
    return float(np.exp(result.x[0])), float(result.x[1])


def _choose_binary(logits: np.ndarray, labels: np.ndarray) -> dict:
    """Out-of-fold validation NLL of temperature and of Platt scaling (two classes); see the module docstring."""
    from sklearn.model_selection import StratifiedKFold

    difference, target = logits[:, 1] - logits[:, 0], labels[:, 1]
    if min(np.bincount(target.astype(int), minlength=2)) < CV_FOLDS:
        return {"method": "temperature", "reason": f"fewer than {CV_FOLDS} validation images of a class"}
    losses = {"temperature": np.zeros(len(target)), "platt": np.zeros(len(target))}
    for fit_on, held_out in StratifiedKFold(CV_FOLDS, shuffle=True, random_state=0).split(difference, target):
        temperature = _fit_temperature(logits[fit_on], labels[fit_on])
        losses["temperature"][held_out] = _per_image_nll(difference[held_out], target[held_out], 1 / temperature, 0)
        losses["platt"][held_out] = _per_image_nll(difference[held_out], target[held_out],
                                                   *_fit_platt(difference[fit_on], target[fit_on]))
    gain = losses["temperature"] - losses["platt"]
    standard_error = float(np.std(gain, ddof=1) / np.sqrt(len(gain)))
    return {"method": "platt" if gain.mean() > standard_error else "temperature",
            "cv_nll": {name: float(loss.mean()) for name, loss in losses.items()},
            "cv_standard_error": standard_error}


def _fit_groups(logits: np.ndarray, labels: np.ndarray, groups: list[list[int]]) -> dict:
    """One temperature per group of a `GroupSoftmax` head, on the validation rows whose group is scored."""
    scale, before, after = np.ones(logits.shape[1]), [], []
    for group in groups:
        scored = np.all(labels[:, group] >= 0, axis=1)
        if not scored.any():
            continue
        z, y = logits[scored][:, group], labels[scored][:, group]
        temperature = _fit_temperature(z, y)
        scale[group] = 1.0 / temperature
        before.append(_nll_softmax(z, y, 1.0))
        after.append(_nll_softmax(z, y, temperature))
    return {"method": "group_temperature", "scale": scale.tolist(), "bias": [0.0] * logits.shape[1],
            "label_groups": groups, "val_nll_before": float(np.mean(before)) if before else None,
            "val_nll_after": float(np.mean(after)) if after else None}


def fit(logits: np.ndarray, labels: np.ndarray, multi_label: bool, method: str = "auto",
        groups: list[list[int]] | None = None) -> dict:
    """Fits a calibration on (validation) `logits` [N, K] and 0/1 `labels` (one-hot or multi-hot [N, K]; for
    multi-label, −1 marks an entry that is not scored, `tfxmed.metrics.classification.ignored_as_minus_one`).

    Returns a JSON-ready dict: {"method": "temperature", "temperature": T} or {"method": "platt",
    "scale": [a_k], "bias": [b_k]} (applied as logits · scale + bias; two classes: scale [a, a], bias
    [0, b]), with the validation NLL before and after, and for `auto` on two classes the choice's figures.
    """
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"calibration method '{method}' unknown; choose from {', '.join(CALIBRATION_METHODS)}")
    logits, labels = np.asarray(logits, np.float64), np.asarray(labels, np.float64)
    if logits.ndim != 2 or logits.shape != labels.shape:
        raise ValueError(f"logits {logits.shape} and labels {labels.shape} must both be [N, K]")
    if method == "none" or not len(logits):
        return {**IDENTITY, **({"label_groups": groups} if groups else {})}
    if groups:
        if method not in ("auto", "temperature"):
            raise ValueError(f"a softmax per group of outputs is calibrated by temperature (auto), not {method}")
        return _fit_groups(logits, labels, groups)
    binary = not multi_label and logits.shape[1] == 2
    choice = {}
    if method == "auto":
        choice = {"selection": _choose_binary(logits, labels)} if binary else {}
        method = "platt" if multi_label else choice["selection"]["method"] if binary else "temperature"
    if method == "temperature":
        if multi_label:
            raise ValueError("temperature scaling is for single-label (softmax) models; use platt for multi-label")
        temperature = _fit_temperature(logits, labels)
        return {"method": "temperature", "temperature": temperature, **choice,
                "val_nll_before": _nll_softmax(logits, labels, 1.0),
                "val_nll_after": _nll_softmax(logits, labels, temperature)}
    if not multi_label and not binary:
        raise ValueError(f"platt scaling of a softmax needs two classes (got {logits.shape[1]}); use temperature")
    if binary:
        scale, bias = _fit_platt(logits[:, 1] - logits[:, 0], labels[:, 1])
        fitted = {"method": "platt", "scale": [scale, scale], "bias": [0.0, bias], "of": "logit difference"}
        return {**fitted, **choice, "val_nll_before": _nll_softmax(logits, labels, 1.0),
                "val_nll_after": _nll_softmax(logits * scale + np.array([0.0, bias]), labels, 1.0)}
    scales, biases, before, after = [], [], [], []
    for k in range(logits.shape[1]):
        scored = labels[:, k] >= 0  # −1: not scored (label weight 0, e.g. U-Ignore)
        z, y = logits[scored, k], labels[scored, k]
        if not scored.any():
            scales.append(1.0)
            biases.append(0.0)
            continue
        scale, bias = _fit_platt(z, y)
        scales.append(scale)
        biases.append(bias)
        before.append(_nll_sigmoid(z, y, 1.0, 0.0))
        after.append(_nll_sigmoid(z, y, scale, bias))
    return {"method": "platt", "scale": scales, "bias": biases,
            "val_nll_before": float(np.mean(before)), "val_nll_after": float(np.mean(after))}


def apply(calibration: dict, logits: np.ndarray, multi_label: bool) -> np.ndarray:
    """Calibrated probabilities [N, K] from logits (NumPy, float64); method "none" gives the model's own.

    Float64 on purpose: a scale > 1 pushes confident logits past float32's last representable step below
    1 (σ(z) rounds to 1.0 from z ≈ 17), and the ties that makes would change the AUC the scaling keeps."""
    logits = np.asarray(logits, np.float64)
    method = calibration["method"]
    if method == "temperature":
        logits = logits / calibration["temperature"]
    elif method in ("platt", "group_temperature"):
        logits = logits * np.asarray(calibration["scale"]) + np.asarray(calibration["bias"])
    elif method != "none":
        raise ValueError(f"calibration method '{method}' unknown; choose from {', '.join(CALIBRATION_METHODS)}")
    if calibration.get("label_groups"):
        probabilities = np.empty_like(logits)
        for group in calibration["label_groups"]:
            probabilities[:, group] = special.softmax(logits[:, group], axis=-1)
        return probabilities
    return special.expit(logits) if multi_label else special.softmax(logits, axis=-1)


def apply_tf(calibration: dict, logits, multi_label: bool):
    """The same as `apply`, in TensorFlow (for the SavedModel's signatures: constants in the graph)."""
    import tensorflow as tf

    from tfxmed.models.layers.head import GroupSoftmax

    logits = tf.cast(logits, tf.float32)
    if calibration["method"] == "temperature":
        logits = logits / tf.constant(calibration["temperature"], tf.float32)
    elif calibration["method"] in ("platt", "group_temperature"):
        logits = logits * tf.constant(calibration["scale"], tf.float32) + tf.constant(calibration["bias"], tf.float32)
    if calibration.get("label_groups"):
        return GroupSoftmax(calibration["label_groups"])(logits)
    return tf.sigmoid(logits) if multi_label else tf.nn.softmax(logits, axis=-1)


def identity_for(model) -> dict:
    """No calibration for `model`: its own activation (a softmax per group for a `GroupSoftmax` head)."""
    from tfxmed.models.layers.head import label_groups_of

    groups = label_groups_of(model)
    return {**IDENTITY, **({"label_groups": groups} if groups else {})}


def predict(model, images: np.ndarray, calibration: dict, multi_label: bool, batch_size: int = 128) -> np.ndarray:
    """Calibrated probabilities of a tfxmed classifier (its declared logits, then `apply`)."""
    from tfxmed.models.factory import predict_logits

    return apply(calibration, predict_logits(model, images, batch_size), multi_label)


def run_calibration(run, val) -> dict:
    """The run's calibration: RUN/calibration.json, or fitted now on the validation split and saved.

    `val`: the validation split as `tfxmed.evaluation.collect_split` returns it, or a function that
    reads it (called only when a fit is needed). A run without a validation split, or with
    `train.calibration: none`, is left uncalibrated.
    """
    from tfxmed.storage import exists, file_sha256, open_file, write_json_atomic

    path = run.paths.calibration
    method = run.config.train.calibration
    checkpoint = file_sha256(run.paths.best_checkpoint)
    if exists(path):
        with open_file(path) as stream:
            saved = json.load(stream)
        if (saved.get("requested"), saved.get("checkpoint_sha256"), saved.get("version")) == (method, checkpoint,
                                                                                             VERSION):
            return saved  # fitted for this very checkpoint and setting
    from tfxmed.models.layers.head import label_groups_of

    groups = label_groups_of(run.model)
    identity = identity_for(run.model)
    if method == "none":
        calibration = {**identity, "reason": "train.calibration: none"}
    elif "val" not in run.manifest["splits"]:
        calibration = {**identity, "reason": "no validation split to fit on"}
    else:
        val = val() if callable(val) else val
        from tfxmed.metrics.classification import ignored_as_minus_one
        from tfxmed.models.factory import predict_logits

        multi_label = run.manifest["multi_label"]
        logits = predict_logits(run.model, val["image"])
        labels = ignored_as_minus_one(val["label"], val.get("label_weight")) if multi_label else val["label"]
        calibration = {**fit(logits, labels, multi_label, method, groups),
                       "fitted_on": f"val ({len(logits)} images)"}
    calibration.update(requested=method, checkpoint_sha256=checkpoint, version=VERSION)
    write_json_atomic(calibration, path)
    return calibration
