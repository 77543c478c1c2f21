"""One default explanation for a run, used everywhere a map is shown or served.

`explain.method` (and `explain.layer`) choose it; evaluation, the report's galleries, TensorBoard and
the SavedModel `explain` signature all use the same choice:

- a method name (`gradcam`, `ig`, `fusion`, ...): that method, at `explain.layer` or the model's
  declared explain layer for the CAM family;
- `auto`: the candidate with the best pointing game on the *validation* split's lesion masks (ties:
  the higher IoU), among the CAM family at the model's declared layer and its candidate layers
  (`ModelSpec.candidate_layers`), IG, SmoothGrad and the served fusion. The test split is never
  looked at. Without validation masks it falls back to `FALLBACK` (Grad-CAM at the declared layer).

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

from tfxmed.explain import METHODS, CamExplainer, make_explainer
from tfxmed.explain.fusion import COMBINATIONS
from tfxmed.metrics.localization import iou, pointing_game
from tfxmed.models.spec import declared_spec, default_explain_layer
from tfxmed.storage import exists, open_file, write_json_atomic

__all__ = ["Choice", "FALLBACK", "SERVED_FUSION", "candidates", "choose", "explainer_for", "load_choice",
           "save_choice", "CAM_METHODS"]

FALLBACK = "gradcam"
SERVED_FUSION = {"gradcam": 0.4, "ig": 0.4}
CAM_METHODS = ("gradcam", "gradcampp", "layercam")
PIXEL_METHODS = ("ig", "smoothgrad")
CHOICE_FILE = "explanation.json"


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
        return name + "".join(f"[{value}]" for value in self.options.values())



def _layer_of(model, config) -> str:
    return config.explain.layer or default_explain_layer(model)


def candidates(model, config) -> list[Choice]:
    """What `auto` compares: CAM methods at each declared layer, IG, SmoothGrad, and the served fusion
    (Grad-CAM + IG) at each layer, as a weighted mean and as a weighted geometric mean."""
    spec = declared_spec(model)
    layers = list(dict.fromkeys([_layer_of(model, config), *(spec.candidate_layers if spec else ())]))
    found = [Choice(method, layer) for layer in layers for method in CAM_METHODS]
    found += [Choice(method) for method in PIXEL_METHODS]
    return found + [Choice("fusion", layer, options={"combination": combination})
                    for layer in layers for combination in COMBINATIONS]


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
    """Each candidate's maps; a fusion reuses its components' maps (its Grad-CAM and IG are candidates too)."""
    raw = {}
    for choice in options:
        if choice.method != "fusion":
            raw[choice.name] = explainer_for(model, choice)(images, targets)
    for choice in options:
        if choice.method == "fusion":
            fusion = explainer_for(model, dataclasses.replace(choice, chosen_by="auto"))
            raw[choice.name] = fusion.fuse({"gradcam": raw[Choice("gradcam", choice.layer).name], "ig": raw["ig"]})
    return raw


def choose(model, config, val: dict | None) -> Choice:
    """Resolves `explain.method` for `model`; `val` (from `collect_split`) is read only for `auto`."""
    method = config.explain.method
    if method != "auto":
        takes_layer = method == "fusion" or issubclass(METHODS[method], CamExplainer)
        return Choice(method, _layer_of(model, config) if takes_layer else None)
    lesion = None if val is None else val["has_mask"].astype(bool) & (val["mask"].reshape(len(val["mask"]), -1)
                                                                        .max(-1) > 0.5)
    if lesion is None or not lesion.any():
        return Choice(FALLBACK, _layer_of(model, config), "auto: fallback (no validation lesion masks)")
    images, masks = val["image"][lesion], val["mask"][lesion] > 0.5
    targets = val["label"][lesion]
    targets = targets if targets.ndim == 2 and targets.sum(1).max() > 1 else targets.argmax(-1)
    options = candidates(model, config)
    maps = _candidate_maps(model, options, images, targets)
    table = {c.name: _scores(maps[c.name], masks, config.explain.pointing_tolerance) for c in options}
    best = max(options, key=lambda c: (table[c.name]["pointing_game"], table[c.name]["iou"]))
    return Choice(best.method, best.layer, f"auto: best pointing game on {int(lesion.sum())} validation lesion images",
                  table, best.options)


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
