"""Ensembles of finished runs as a run of their own (the library behind `python -m tfxmed ensemble`).

The members' declared logits are combined by one fixed linear layer, fitted on the validation split:

- **mean**: the average of the members' logits (W = [I/M, ..., I/M], b = 0);
- **weighted**: non-negative member weights summing to 1 (w = softmax(θ)), fitted by minimising the
  validation negative log-likelihood of softmax(Σ w_m z_m) (sigmoid per label for multi-label);
- **stacking**: a scikit-learn logistic regression on the concatenated member logits (per label on the
  members' logits of that label for multi-label). Because it is fitted on validation, its validation
  figures are **cross-fitted**: each validation image is scored by a regression fitted on the other
  folds (5 stratified folds), and `ensemble.json` gives those beside the in-sample ones.

The result (`save_ensemble_run`) is a run directory like any other: `evaluate`, `report`, `explain`
and `export` work on it (its model is `tfxmed.models.ensemble.build_ensemble`'s). Members must share
their input shape, classes and data (the same converted split): each is scored on the same images.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np
from scipy import optimize, special

from tfxmed.config import to_dict
from tfxmed.errors import Refusal
from tfxmed.runs import RunPaths, load_run, write_run_info
from tfxmed.storage import write_json_atomic

__all__ = ["METHODS", "ensemble", "fit_combiner", "save_ensemble_run"]

METHODS = ("mean", "weighted", "stacking")
FOLDS = 5  # stacking's cross-fitting on validation
SUMMARY = "ensemble.json"


def _nll(logits: np.ndarray, labels: np.ndarray, multi_label: bool) -> float:
    if multi_label:  # −1: not scored (label weight 0)
        return float(np.mean((np.logaddexp(0.0, logits) - labels * logits)[labels >= 0]))
    return float(-np.mean(np.sum(labels * special.log_softmax(logits, axis=-1), axis=-1)))


def _stack_matrix(weights: np.ndarray, classes: int) -> np.ndarray:
    """W that gives Σ_m w_m z_m from the concatenated logits [z_1, ..., z_M]."""
    return np.concatenate([w * np.eye(classes) for w in weights], axis=0)


def _logistic_regression(features: np.ndarray, target: np.ndarray):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0, max_iter=2000).fit(features, target)


def _stacking(logits: np.ndarray, labels: np.ndarray, multi_label: bool) -> tuple[np.ndarray, np.ndarray]:
    """W, b of the stacking regression on validation logits [M, N, K] (see the module docstring)."""
    members, _, classes = logits.shape
    joined = np.concatenate(list(logits), axis=1)  # [N, M·K], member-major
    kernel, bias = np.zeros((members * classes, classes)), np.zeros(classes)
    if multi_label:
        for k in range(classes):
            scored = labels[:, k] >= 0
            model = _logistic_regression(logits[:, scored, k].T, labels[scored, k])
            kernel[np.arange(members) * classes + k, k], bias[k] = model.coef_[0], model.intercept_[0]
        return kernel, bias
    target = labels.argmax(-1)
    model = _logistic_regression(joined, target)
    if classes == 2:  # one coefficient vector: p(class 1) = σ(c·z + b), i.e. logits [0, c·z + b]
        kernel[:, 1], bias[1] = model.coef_[0], model.intercept_[0]
    else:
        kernel, bias = model.coef_.T, model.intercept_
    return kernel, bias


def fit_combiner(method: str, logits: np.ndarray, labels: np.ndarray, multi_label: bool) -> dict:
    """The combiner (W, b) of `method` fitted on validation `logits` [M, N, K] and 0/1 `labels` [N, K],
    with the member weights (mean, weighted) and, for stacking, cross-fitted validation logits."""
    if method not in METHODS:
        raise Refusal(f"--method '{method}': choose one of {', '.join(METHODS)}")
    logits, labels = np.asarray(logits, np.float64), np.asarray(labels, np.float64)
    members, _, classes = logits.shape
    if method == "mean":
        weights = np.full(members, 1.0 / members)
    elif method == "weighted":
        result = optimize.minimize(
            lambda theta: _nll(np.tensordot(special.softmax(theta), logits, axes=1), labels, multi_label),
            np.zeros(members), method="L-BFGS-B")
        weights = special.softmax(result.x)
    if method != "stacking":
        return {"kernel": _stack_matrix(weights, classes), "bias": np.zeros(classes), "weights": weights.tolist(),
                "val_logits": np.tensordot(weights, logits, axes=1)}
    kernel, bias = _stacking(logits, labels, multi_label)
    return {"kernel": kernel, "bias": bias, "val_logits": _cross_fitted(logits, labels, multi_label)}


def _cross_fitted(logits: np.ndarray, labels: np.ndarray, multi_label: bool) -> np.ndarray:
    """Each validation image's stacking logits from a regression fitted on the other folds."""
    from sklearn.model_selection import KFold, StratifiedKFold

    joined = np.concatenate(list(logits), axis=1)
    strata = None if multi_label else labels.argmax(-1)
    splitter = KFold(FOLDS, shuffle=True, random_state=0) if multi_label else StratifiedKFold(
        FOLDS, shuffle=True, random_state=0)
    out = np.zeros(labels.shape)
    for fit_on, held_out in splitter.split(joined, strata):
        kernel, bias = _stacking(logits[:, fit_on], labels[fit_on], multi_label)
        out[held_out] = joined[held_out] @ kernel + bias
    return out


def _val_auc(logits: np.ndarray, labels: np.ndarray, multi_label: bool) -> float:
    from tfxmed.metrics.classification import report_auc

    scores = special.expit(logits) if multi_label else special.softmax(logits, axis=-1)
    return report_auc(labels.astype(int) if multi_label else labels.argmax(-1), scores, multi_label)  # −1 kept


def save_ensemble_run(member_dirs: Sequence[str], out: str, combiner=None, calibration: str | None = None,
                      extra: dict | None = None) -> dict:
    """Writes `out` as a run directory whose best checkpoint is the members' ensemble; returns its config.

    `calibration`: overrides the members' `train.calibration` (stacking is fitted on validation already).
    """
    from tfxmed.models import declared_spec
    from tfxmed.models.ensemble import build_ensemble

    runs = [load_run(run_dir) for run_dir in member_dirs]
    model = build_ensemble([run.model for run in runs], combiner=combiner) if len(runs) > 1 else runs[0].model
    paths, config = RunPaths(out), runs[0].config
    config.runtime.run_dir, config.runtime.seed = out, 0
    config.data.image_size = int(model.inputs[0].shape[-3])  # rows: the largest member's (smaller ones resize inside)
    if calibration is not None:
        config.train.calibration = calibration
    os.makedirs(os.path.dirname(paths.best_checkpoint), exist_ok=True)
    temporary = paths.best_checkpoint.replace(".keras", ".tmp.keras")
    model.save(temporary)
    os.replace(temporary, paths.best_checkpoint)
    write_run_info(config, out, {"data_dir": runs[0].data_dir, "strategy": config.runtime.strategy,
                                 "model_spec": dataclasses.asdict(declared_spec(model)),
                                 "members": list(member_dirs), **(extra or {})})
    return to_dict(config)


def _validation_logits(runs) -> tuple[np.ndarray, np.ndarray]:
    from tfxmed.evaluation import collect_split
    from tfxmed.metrics.classification import ignored_as_minus_one
    from tfxmed.models.factory import predict_logits

    first = runs[0]
    for run in runs[1:]:
        if run.data_dir != first.data_dir or run.manifest["class_names"] != first.manifest["class_names"]:
            raise Refusal(f"ensemble members must be trained on the same converted data: '{run.root}' uses "
                          f"{run.data_dir} {run.manifest['class_names']}, '{first.root}' {first.data_dir} "
                          f"{first.manifest['class_names']}")
    if "val" not in first.manifest["splits"]:
        raise Refusal(f"'{first.root}': its data has no validation split to fit the ensemble on")
    logits = []
    for run in runs:  # each member sees the images as its own pipeline makes them (its data.image_size)
        val = collect_split(run.data_dir, run.manifest, run.config, "val")
        logits.append(predict_logits(run.model, val["image"]))  # float32, also for a bfloat16 member
    logits = np.stack(logits)
    multi_label = first.manifest["multi_label"]
    return logits, ignored_as_minus_one(val["label"], val["label_weight"]) if multi_label else val["label"]


def ensemble(member_dirs: Sequence[str], method: str, out: str) -> dict:
    """Fits `method` on the members' validation logits and writes the ensemble run `out`; returns its summary."""
    if len(member_dirs) < 2:
        raise Refusal(f"an ensemble needs at least 2 runs, got {len(member_dirs)}")
    if os.path.isdir(out) and os.listdir(out):
        raise Refusal(f"--out '{out}' is a non-empty folder; give a new one (tfxmed never overwrites a run)")
    if method not in METHODS:
        raise Refusal(f"--method '{method}': choose one of {', '.join(METHODS)}")
    runs = [load_run(run_dir) for run_dir in member_dirs]
    logits, labels = _validation_logits(runs)
    multi_label = runs[0].manifest["multi_label"]
    fitted = fit_combiner(method, logits, labels, multi_label)
    summary = {
        "method": method, "members": list(member_dirs), "weights": fitted.get("weights"),
        "val_auc_members": [_val_auc(member, labels, multi_label) for member in logits],
        "val_auc": _val_auc(fitted["val_logits"], labels, multi_label),
        "val_auc_note": ("cross-fitted over 5 folds of validation" if method == "stacking"
                         else "the combination was fitted on these images" if method == "weighted" else ""),
    }
    if method == "stacking":
        in_sample = np.concatenate(list(logits), axis=1) @ fitted["kernel"] + fitted["bias"]
        summary["val_auc_in_sample"] = _val_auc(in_sample, labels, multi_label)
    save_ensemble_run(member_dirs, out, (fitted["kernel"], fitted["bias"]),
                      calibration="none" if method == "stacking" else None, extra={"ensemble": method})
    write_json_atomic(summary, os.path.join(out, SUMMARY))
    return summary
