"""Explainers: one base class owns the pipeline; each method overrides one hook.

`explainer(images, targets) -> maps [N, *spatial]` for every method; `make_explainer(name, model)`
builds one by its short name (the names the CLI and configs use).
"""

from __future__ import annotations

import inspect

import keras

from tfxmed.explain.base import Explainer, normalize_maps, target_weights, upsample
from tfxmed.explain.eigen_cam import EigenCam, EigenGradCam
from tfxmed.explain.fusion import Fusion
from tfxmed.explain.grad_cam import CamExplainer, GradCam
from tfxmed.explain.grad_cam_plus_plus import GradCamPlusPlus
from tfxmed.explain.hires_cam import HiResCam
from tfxmed.explain.integrated_gradients import IntegratedGradients
from tfxmed.explain.kernel_shap import KernelShap
from tfxmed.explain.layer_cam import LayerCam
from tfxmed.explain.lime import Lime
from tfxmed.explain.lrp import LayerwiseRelevancePropagation
from tfxmed.explain.occlusion import Occlusion
from tfxmed.explain.saliency import GradientExplainer, Saliency
from tfxmed.explain.score_cam import ScoreCam
from tfxmed.explain.smooth_grad import SmoothGrad
from tfxmed.explain.xgrad_cam import XGradCam

METHODS = {
    "gradcam": GradCam,
    "gradcampp": GradCamPlusPlus,
    "xgradcam": XGradCam,
    "layercam": LayerCam,
    "hirescam": HiResCam,
    "eigencam": EigenCam,
    "eigengradcam": EigenGradCam,
    "scorecam": ScoreCam,
    "saliency": Saliency,
    "smoothgrad": SmoothGrad,
    "ig": IntegratedGradients,
    "occlusion": Occlusion,
    "lime": Lime,
    "kernelshap": KernelShap,
    "lrp": LayerwiseRelevancePropagation,
    "fusion": Fusion,
}


def make_explainer(name: str, model: keras.Model, default_layer: str = "", **options):
    """Builds the explainer called `name` (see `METHODS`) with its keyword options.

    `default_layer` (e.g. a run's `explain.layer`) is passed as `layer` to the methods that take one
    and ignored by the others; an explicit `layer=` option is passed as given.
    """
    if name not in METHODS:
        raise ValueError(f"unknown explanation method '{name}'; choose from {', '.join(METHODS)}")
    parameters = inspect.signature(METHODS[name]).parameters
    takes_precision = "precision" in parameters or any(p.kind == p.VAR_KEYWORD for p in parameters.values())
    precision = options.get("precision", "float32") if takes_precision else options.pop("precision", "float32")
    if precision != "float32" and not takes_precision:
        raise ValueError(f"method '{name}' computes in float32 only; drop precision='{precision}'")
    if default_layer and "layer" not in options and "layer" in parameters:
        options["layer"] = default_layer
    return METHODS[name](model, **options)


__all__ = [
    "METHODS", "make_explainer", "Explainer", "CamExplainer", "GradientExplainer", "GradCam", "GradCamPlusPlus",
    "XGradCam", "LayerCam", "HiResCam", "EigenCam", "EigenGradCam", "ScoreCam", "Saliency", "SmoothGrad",
    "IntegratedGradients", "Occlusion", "Lime", "KernelShap", "LayerwiseRelevancePropagation", "Fusion", "normalize_maps", "target_weights",
    "upsample",
]
