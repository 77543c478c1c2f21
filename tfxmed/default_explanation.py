"""One default explanation for a run, used everywhere a map is shown or served.

`explain.method` (and `explain.layer`) choose it; evaluation, the report's galleries, TensorBoard and
the SavedModel `explain` signature all use the same choice:

- a method name (`gradcam`, `ig`, `fusion`, ...): that method, at `explain.layer` or the model's
  declared explain layer for the CAM family;
- `auto`: scored on the *validation* split's lesion masks, among the CAM family at the model's declared
  layer and its candidate layers (`ModelSpec.candidate_layers`), IG (zero and blurred baselines, each
  raw and Gaussian-smoothed), SmoothGrad and the served fusion (Grad-CAM at each layer + IG with either
  baseline). The best pointing game wins; candidates within `TIE_STANDARD_ERRORS` binomial standard
  errors of it tie, and the higher IoU breaks the tie (a one-image edge is noise, not a reason to give up
  a map twice as tight). The test split is never looked at. Without validation masks it falls back to
  `FALLBACK` (Grad-CAM at the declared layer). Pixel scales (`BLURRED_BASELINE_SIGMA`,
  `SMOOTHING_SIGMAS`) are given at 64 px and scaled with the input size.

`evaluate` resolves the choice and writes it to RUN/eval/explanation.json (and metrics.json);
`export` and the report read it back. The design's fusion (0.4 Grad-CAM + 0.4 IG + 0.2 LIME) fits
LIME on the host, which no graph can hold: the SavedModel serves `SERVED_FUSION` (Grad-CAM + IG with
the same 0.4 / 0.4 weights, renormalised), the same maps `make_explainer("fusion", weights=SERVED_FUSION)`
gives offline.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from tfxmed.data.selection import lesion_examples
from tfxmed.explain import METHODS, CamExplainer, make_explainer
from tfxmed.explain.fusion import COMBINATIONS
from tfxmed.explain.ops import gaussian_blur
from tfxmed.metrics.localization import iou, pointing_game
from tfxmed.models.spec import declared_spec, default_explain_layer
from tfxmed.storage import exists, open_file, write_json_atomic

__all__ = ["Choice", "FALLBACK", "SERVED_FUSION", "candidates", "choose", "choose_with_maps", "explainer_for",
           "load_choice", "save_choice", "CAM_METHODS"]

FALLBACK = "gradcam"
SERVED_FUSION = {"gradcam": 0.4, "ig": 0.4}
CAM_METHODS = ("gradcam", "gradcampp", "layercam")
PIXEL_METHODS = ("ig", "smoothgrad")
CHOICE_FILE = "explanation.json"
# IG's blurred baseline and the smoothing of IG maps `auto` compares, in pixels at REFERENCE_SIZE (scaled
# with the input). On the quick start's validation split (docs/results.md) the blurred baseline took IG's
# pointing game from 0.36 to 0.91 and smoothing its IoU from 0.14 to 0.37: the blurred image keeps
# the anatomy and loses the small findings, so the path from it adds exactly those.
# From the blurred baseline the path is short (the image minus its fine structure), and 16 steps gave
# the same validation pointing game and IoU as 32 (to 0.007) at half the cost.
REFERENCE_SIZE = 64
BLURRED_BASELINE_SIGMA = 2.0
BLURRED_BASELINE_STEPS = 16
SMOOTHING_SIGMAS = (1.0, 1.5, 2.0)
# Pointing games within this many standard errors (sqrt(p(1-p)/n), about 0.02 at p = 0.92 on 160 images)
# of the best are a tie, which IoU breaks. With exact ties only, one run of the L_exp ablation chose
# unsmoothed IG on a one-image edge (0.919 vs 0.912) at IoU 0.13 instead of 0.35 (docs/results.md).
TIE_STANDARD_ERRORS = 1.0


@dataclasses.dataclass
class Choice:
    """The default explanation of a run: a method, its layer (CAM family), and why it was chosen."""

    method: str
    layer: str | None = None
    chosen_by: str = "config"
    candidates: dict = dataclasses.field(default_factory=dict)  # name → validation scores (auto only)
    options: dict = dataclasses.field(default_factory=dict)  # e.g. a fusion's {"combination": "product"}

    @property
    def name(self) -> str:
        name = f"{self.method}@{self.layer}" if self.layer else self.method
        return name + "".join(f"[{_option_text(key, value)}]" for key, value in self.options.items())


def _option_text(key: str, value) -> str:
    """`product` for a combination, `key=value` otherwise; nested options as `method:key=value,...`."""
    if isinstance(value, dict):
        return ";".join(f"{name}:" + ",".join(_option_text(k, v) for k, v in inner.items()) if isinstance(inner, dict)
                        else _option_text(name, inner) for name, inner in value.items())
    if key == "combination":
        return str(value)
    return f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"


def _layer_of(model, config) -> str:
    return config.explain.layer or default_explain_layer(model)


def _ig_variants(model) -> list[dict]:
    """IG options `auto` compares: zero and blurred baselines, each raw and smoothed at each scale (volumes: the
    zero baseline, unsmoothed; the blur and the smoothing are 2-D)."""
    if len(model.inputs[0].shape) == 5:
        return [{}]
    scale = float(model.inputs[0].shape[1]) / REFERENCE_SIZE
    baselines = [{}, {"baseline": "blurred", "blur_sigma": BLURRED_BASELINE_SIGMA * scale,
                      "steps": BLURRED_BASELINE_STEPS}]
    return [{**baseline, **({"smoothing_sigma": sigma * scale} if sigma else {})}
            for baseline in baselines for sigma in (0.0, *SMOOTHING_SIGMAS)]


def candidates(model, config) -> list[Choice]:
    """What `auto` compares: CAM methods at each declared layer, IG variants (`_ig_variants`),
    SmoothGrad, and the served fusion (Grad-CAM + IG, either baseline) at each layer, as a weighted
    mean and as a weighted geometric mean."""
    spec = declared_spec(model)
    layers = list(dict.fromkeys([_layer_of(model, config), *(spec.candidate_layers if spec else ())]))
    found = [Choice(method, layer) for layer in layers for method in CAM_METHODS]
    found += [Choice("ig", options=options) for options in _ig_variants(model)]
    found += [Choice(method) for method in PIXEL_METHODS if method != "ig"]
    baselines = [options for options in _ig_variants(model) if "smoothing_sigma" not in options]
    return found + [Choice("fusion", layer, options={"combination": combination,
                                                     **({"options": {"ig": ig}} if ig else {})})
                    for ig in baselines for layer in layers for combination in COMBINATIONS]


def explainer_for(model, choice: Choice, batch_size: int = 32, serving: bool = False, jit_compile: bool = False):
    """The explainer of `choice`. A fusion is the design's (with LIME) offline, and the in-graph
    `SERVED_FUSION` when serving, XLA-compiled (`jit_compile`, which no host-side LIME survives) or
    chosen by `auto` (auto compares the fusion it can serve)."""
    options = dict(choice.options)
    if choice.method == "fusion" and (serving or jit_compile or choice.chosen_by.startswith("auto")):
        options["weights"] = dict(SERVED_FUSION)
    return make_explainer(choice.method, model, default_layer=choice.layer or "", batch_size=batch_size,
                          jit_compile=jit_compile, **options)


def _scores(maps, masks, tolerance: int) -> dict:
    hits = pointing_game(maps, masks, tolerance)
    overlap = iou(maps, masks, "fraction_of_max", 0.5)
    return {"pointing_game": float(np.nanmean(hits)), "iou": float(np.nanmean(overlap))}


def _candidate_maps(model, options: list[Choice], images, targets) -> dict[str, np.ndarray]:
    """Each candidate's maps. Smoothed variants blur their unsmoothed twin's maps (the same op the
    explainer runs in-graph); a fusion reuses its components' maps (they are candidates too)."""
    raw = {}
    for choice in options:
        if choice.method == "fusion":
            continue
        sigma = choice.options.get("smoothing_sigma", 0.0)
        unsmoothed = dataclasses.replace(choice, options={k: v for k, v in choice.options.items()
                                                          if k != "smoothing_sigma"})
        if unsmoothed.name not in raw:
            raw[unsmoothed.name] = explainer_for(model, unsmoothed)(images, targets)
        if sigma:
            raw[choice.name] = gaussian_blur(raw[unsmoothed.name][..., None], sigma).numpy()[..., 0]
    for choice in options:
        if choice.method == "fusion":
            fusion = explainer_for(model, dataclasses.replace(choice, chosen_by="auto"))
            ig = Choice("ig", options=choice.options.get("options", {}).get("ig", {}))
            raw[choice.name] = fusion.fuse({"gradcam": raw[Choice("gradcam", choice.layer).name], "ig": raw[ig.name]})
    return raw


def choose(model, config, val: dict | None) -> Choice:
    """Resolves `explain.method` for `model`; `val` (from `collect_split`) is read only for `auto`."""
    return choose_with_maps(model, config, val)[0]


def choose_with_maps(model, config, val: dict | None) -> tuple[Choice, np.ndarray | None]:
    """`choose`, and for `auto` the chosen candidate's maps of the validation lesion images
    (`lesion_examples(val)`, in order) it was scored on, so that callers need not compute them again."""
    method = config.explain.method
    if method != "auto":
        takes_layer = method == "fusion" or issubclass(METHODS[method], CamExplainer)
        return Choice(method, _layer_of(model, config) if takes_layer else None), None
    lesion = None if val is None else lesion_examples(val)
    if lesion is None or not len(lesion):
        return Choice(FALLBACK, _layer_of(model, config), "auto: fallback (no validation lesion masks)"), None
    images, masks = val["image"][lesion], val["mask"][lesion] > 0.5
    targets = val["label"][lesion]
    targets = targets if targets.ndim == 2 and targets.sum(1).max() > 1 else targets.argmax(-1)
    options = candidates(model, config)
    maps = _candidate_maps(model, options, images, targets)
    table = {c.name: _scores(maps[c.name], masks, config.explain.pointing_tolerance) for c in options}
    best = _best(options, table, len(lesion))
    return Choice(best.method, best.layer, f"auto: best pointing game on {len(lesion)} validation lesion images",
                  table, best.options), maps[best.name]


def _best(options: list[Choice], table: dict, images: int) -> Choice:
    """The highest IoU among the candidates whose pointing game ties with the best (`TIE_STANDARD_ERRORS`)."""
    top = max(table[c.name]["pointing_game"] for c in options)
    margin = TIE_STANDARD_ERRORS * np.sqrt(top * (1.0 - top) / images)
    tied = [c for c in options if table[c.name]["pointing_game"] >= top - margin - 1e-12]
    return max(tied, key=lambda c: (table[c.name]["iou"], table[c.name]["pointing_game"]))


def save_choice(eval_dir: str, choice: Choice) -> str:
    path = os.path.join(eval_dir, CHOICE_FILE)
    write_json_atomic(dataclasses.asdict(choice), path)
    return path


def load_choice(eval_dir: str) -> Choice | None:
    """The choice `evaluate` saved in `eval_dir`, or None when the run was not evaluated yet."""
    path = os.path.join(eval_dir, CHOICE_FILE)
    if not exists(path):
        return None
    with open_file(path) as stream:
        return Choice(**json.load(stream))
