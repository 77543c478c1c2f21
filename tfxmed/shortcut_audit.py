"""The shortcut audit behind `python -m tfxmed audit --run DIR`: does the model decide on a spurious cue,
and do its explanations say so?

For every image of a split whose records mark where a known cue is (`confounder` in the TFRecord
schema; the synthetic benchmark's corner marker), the audit computes
- the prediction with the cue, and with the cue removed (inpainted from the surrounding pixels): the
  counterfactual. An image is *shortcut-driven* when removing the cue changes the decision; an image
  without the cue never is;
- each method's explanation of the predicted class, and the share of its positive mass on the cue,
  on the lesion, and elsewhere. On an image without the cue, "the cue" is where the cue sits on the
  split's other images (the union of their cue masks): a method that paints that place whatever the
  image holds is caught there as a false alarm. An image is *flagged* when the share on the cue
  exceeds a threshold chosen on the validation split (best F1 against the counterfactual truth
  there, over images with and without the cue, with at most `MAX_FALSE_ALARM` (5%) of the images
  that are not cue-driven flagged).
Outputs: flag recall / precision against the counterfactual truth, AUC on cue-present vs cue-absent
images, and a gallery of flagged cases, in RUN/eval/audit.json and RUN/eval/audit_flagged.png.

`add_marker=True` is the negative control for a model trained without the cue: the synthetic
benchmark's corner marker is drawn on every image at audit time only.
"""

from __future__ import annotations

import os

import numpy as np
from scipy import ndimage
from skimage.restoration import inpaint_biharmonic

from tfxmed.data.synthetic import marker_region
from tfxmed.default_explanation import choose, explainer_for, load_choice
from tfxmed.evaluation import collect_split, metric_labels
from tfxmed.explain import make_explainer
from tfxmed.explain.overlay import save_overlay_grid
from tfxmed.metrics.classification import report_auc
from tfxmed.metrics.shortcut import choose_flag_threshold, flag_scores, region_mass
from tfxmed.runs import load_run
from tfxmed.storage import write_json_atomic

__all__ = ["audit_run", "remove_cue", "draw_marker", "MARKER_INTENSITY"]

MARKER_INTENSITY = 0.93  # the synthetic marker's mean brightness in [0, 1] (drawn in [0.88, 0.98])


def remove_cue(images: np.ndarray, regions: np.ndarray, margin: int = 1) -> np.ndarray:
    """`images` with each region (grown by `margin` pixels) inpainted from its surroundings (biharmonic)."""
    cleaned = np.array(images, np.float32, copy=True)
    for index in np.flatnonzero(regions.reshape(len(regions), -1).any(1)):
        region = ndimage.binary_dilation(regions[index].astype(bool).squeeze(-1), iterations=margin)
        for channel in range(cleaned.shape[-1]):
            cleaned[index, ..., channel] = inpaint_biharmonic(cleaned[index, ..., channel], region)
    return cleaned


def draw_marker(images: np.ndarray, manifest: dict) -> tuple[np.ndarray, np.ndarray]:
    """Draws the synthetic benchmark's corner marker on every (normalised) image; returns (images, regions)."""
    marked = np.array(images, np.float32, copy=True)
    regions = np.zeros(marked.shape[:-1] + (1,), bool)
    rows, columns = marker_region(marked.shape[1])
    mean, std = np.asarray(manifest["pixel_mean"], np.float32), np.asarray(manifest["pixel_std"], np.float32)
    marked[:, rows, columns, :] = (MARKER_INTENSITY - mean) / std
    regions[:, rows, columns, :] = True
    return marked, regions


def _cue_images(run, split: str, add_marker: bool) -> dict:
    data = collect_split(run.data_dir, run.manifest, run.config, split)
    if add_marker:
        data["image"], data["confounder"] = draw_marker(data["image"], run.manifest)
        data["has_confounder"] = np.ones(len(data["image"]), bool)
    regions = data["confounder"] > 0.5
    present = data["has_confounder"].astype(bool) & regions.reshape(len(regions), -1).any(1)
    if not present.any():
        raise ValueError(f"the {split} records of {run.data_dir} mark no spurious cue (no `confounder` masks); "
                         "convert with a confounder (e.g. data.synthetic.confounder_strength > 0) or pass add_marker")
    regions = np.where(present[:, None, None, None], regions, regions[present].any(0))  # absent: where it sits
    return {**data, "regions": regions, "present": present}


def _audit_images(run, data: dict, explainers: dict) -> dict:
    """Decisions with and without the cue, and each method's mass on cue / lesion / elsewhere (every image)."""
    model, present, regions = run.model, data["present"], data["regions"]
    with_cue = model.predict(data["image"], batch_size=128, verbose=0)
    without_cue = with_cue.copy()  # an image without the cue is its own counterfactual
    without_cue[present] = model.predict(remove_cue(data["image"][present], regions[present]), batch_size=128,
                                         verbose=0)
    predicted = with_cue.argmax(-1)
    maps = {name: explainer(data["image"], predicted) for name, explainer in explainers.items()}
    masses = {name: region_mass(values[..., None], regions, data["mask"] > 0.5) for name, values in maps.items()}
    return {"with_cue": with_cue, "without_cue": without_cue,
            "shortcut_driven": predicted != without_cue.argmax(-1), "maps": maps, "masses": masses}


def _decision(probabilities: np.ndarray, names) -> str:
    """"lesion 0.95": the predicted class and its probability (gallery titles, with → without the cue)."""
    return f"{names[int(probabilities.argmax())]} {probabilities.max():.2f}"


def _cue_aucs(data: dict, probabilities: np.ndarray, multi_label: bool) -> dict:
    labels = metric_labels(data, multi_label)
    has_cue = data["present"]
    result = {}
    for name, chosen in (("auc_with_cue", has_cue), ("auc_without_cue", ~has_cue)):
        try:
            result[name] = report_auc(labels[chosen], probabilities[chosen], multi_label)
        except ValueError:  # one class only in this group
            result[name] = None
    return result


def audit_run(run_dir: str, split: str = "test", methods=None, add_marker: bool = False, gallery: int = 12,
              batch_size: int = 32) -> dict:
    """Audits a run for a shortcut; writes RUN/eval/audit.json (and the flagged gallery) and returns it."""
    run = load_run(run_dir)
    explainers = {}
    for name in methods or ("default",):
        if name == "default":  # the run's default explanation, as evaluation chose it (or chosen now)
            choice = load_choice(run.paths.eval_dir) or choose(
                run.model, run.config, collect_split(run.data_dir, run.manifest, run.config, "val"))
            explainers[choice.name] = explainer_for(run.model, choice, batch_size)
        else:
            explainers[name] = make_explainer(name, run.model, default_layer=run.config.explain.layer,
                                              batch_size=batch_size)
    methods = tuple(explainers)
    multi_label = run.manifest["multi_label"]
    val = _audit_images(run, _cue_images(run, "val", add_marker), explainers)
    data = _cue_images(run, split, add_marker)
    test = _audit_images(run, data, explainers)
    present, driven = data["present"], test["shortcut_driven"]
    result = {"split": split, "add_marker": add_marker, "images": len(present), "images_with_cue": int(present.sum()),
              "shortcut_driven": int(driven.sum()), "shortcut_driven_rate": float(driven[present].mean()),
              **(_cue_aucs(data, test["with_cue"], multi_label) if not add_marker else {}), "methods": {}}
    eval_dir = run.paths.eval_dir
    os.makedirs(eval_dir, exist_ok=True)
    for name in methods:
        # a map with no positive mass puts none on the cue (NaN share → 0), at validation as at test
        threshold, how = choose_flag_threshold(np.nan_to_num(val["masses"][name][:, 0], nan=0.0),
                                               val["shortcut_driven"])
        cue_mass = test["masses"][name][:, 0]
        flags = np.nan_to_num(cue_mass, nan=0.0) > threshold
        means = np.nanmean(test["masses"][name][present], axis=0)
        result["methods"][name] = {
            "threshold": threshold, "threshold_chosen_by": how, **flag_scores(flags, driven),
            # false alarms where there is no cue to read: the method paints the cue's place regardless
            "flag_rate_without_cue": float(flags[~present].mean()) if (~present).any() else None,
            "mean_mass": dict(zip(("cue", "lesion", "elsewhere"), map(float, means))),  # over images with the cue
        }
        shown = np.flatnonzero(flags)[:gallery]
        if len(shown):
            names = run.manifest["class_names"]
            titles = [f"#{k} {_decision(test['with_cue'][k], names)}→{_decision(test['without_cue'][k], names)} "
                      f"cue {cue_mass[k]:.0%}" for k in shown]
            path = os.path.join(eval_dir, f"audit_flagged_{name}.png")
            save_overlay_grid(path, data["image"][shown], test["maps"][name][shown], data["regions"][shown], titles)
            result["methods"][name]["gallery"] = path
    write_json_atomic(result, os.path.join(eval_dir, "audit_marker_added.json" if add_marker else "audit.json"))
    return result
