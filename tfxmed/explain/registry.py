"""The explainers by short name (the names the CLI and configs use) and `make_explainer`."""

from __future__ import annotations

import inspect

import keras

from tfxmed.explain.base import host_side_message
from tfxmed.explain.cam import CamExplainer
from tfxmed.explain.eigen_cam import EigenCam, EigenGradCam
from tfxmed.explain.fusion import DEFAULT_WEIGHTS, Fusion
from tfxmed.explain.grad_cam import GradCam
from tfxmed.explain.grad_cam_plus_plus import GradCamPlusPlus
from tfxmed.explain.hires_cam import HiResCam
from tfxmed.explain.integrated_gradients import IntegratedGradients
from tfxmed.explain.kernel_shap import KernelShap
from tfxmed.explain.layer_cam import LayerCam
from tfxmed.explain.lime import Lime
from tfxmed.explain.lrp import LayerwiseRelevancePropagation
from tfxmed.explain.occlusion import Occlusion
from tfxmed.explain.rollout import AttentionRollout
from tfxmed.explain.saliency import Saliency
from tfxmed.explain.score_cam import ScoreCam
from tfxmed.explain.smooth_grad import SmoothGrad
from tfxmed.explain.xgrad_cam import XGradCam
from tfxmed.models.spec import MEMBERS, declared_spec

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
    "rollout": AttentionRollout,
    "fusion": Fusion,
}


def make_explainer(name: str, model: keras.Model, default_layer: str = "", jit_compile: bool = False, **options):
    """Builds the explainer called `name` (see `METHODS`) with its keyword options.

    `default_layer` (e.g. a run's `explain.layer`) is passed as `layer` to the methods that take one
    and ignored by the others; an explicit `layer=` option is passed as given. "fusion" takes
    `weights` (method → λ), per-method `options`, `batch_size`, `precision` and `Fusion`'s own options.
    `jit_compile=True` compiles the explainer with XLA (`Explainer.with_jit_compile`); host-side methods
    (LIME, KernelSHAP) are then refused by name.
    """
    if name not in METHODS:
        raise ValueError(f"unknown explanation method '{name}'; choose from {', '.join(METHODS)}")
    if jit_compile and name != "fusion" and not METHODS[name].in_graph:
        raise ValueError(host_side_message(name))
    explainer = _build(name, model, default_layer, **options)
    return explainer.with_jit_compile() if jit_compile else explainer


def _build(name: str, model: keras.Model, default_layer: str = "", **options):
    if name == "fusion":
        return _fusion(model, default_layer, **options)
    parameters = inspect.signature(METHODS[name]).parameters
    takes_precision = "precision" in parameters or any(p.kind == p.VAR_KEYWORD for p in parameters.values())
    precision = options.get("precision", "float32") if takes_precision else options.pop("precision", "float32")
    if precision != "float32" and not takes_precision:
        raise ValueError(f"method '{name}' computes in float32 only; drop precision='{precision}'")
    if default_layer and "layer" not in options and "layer" in parameters:
        options["layer"] = default_layer
    spec = declared_spec(model)
    if issubclass(METHODS[name], CamExplainer) and (options.get("layer") or (spec and spec.explain_layer)) == MEMBERS:
        return _members(name, model, **options)
    return METHODS[name](model, **options)


def _members(name: str, model: keras.Model, layer: str = MEMBERS, **options) -> Fusion:
    """An ensemble's CAM (`ModelSpec.member_layers`): the weighted mean of CAM `name` at each member's layer,
    each map normalised at input resolution, the members' shares of the combination as weights."""
    spec = declared_spec(model)
    if spec is None or not spec.member_layers:
        raise ValueError(f"layer '{layer}' explains an ensemble's members; model '{model.name}' declares none")
    explainers = {member: METHODS[name](model, layer=member, **options) for member in spec.member_layers}
    return Fusion(explainers, dict(zip(spec.member_layers, spec.member_weights)), smoothing_sigma=0.0)


def _fusion(model: keras.Model, default_layer: str = "", weights=None, options=None, batch_size: int = 32,
            precision: str = "float32", **fusion_options) -> Fusion:
    """Builds each weighted method with its own options, then the fusion of them."""
    weights = dict(weights or DEFAULT_WEIGHTS)
    unknown = [name for name in weights if name not in METHODS or name == "fusion"]
    if unknown:
        raise ValueError(f"fusion components {unknown} are not explanation methods; choose from "
                         f"{', '.join(m for m in METHODS if m != 'fusion')}")
    precision_option = {} if precision == "float32" else {"precision": precision}
    explainers = {
        name: make_explainer(name, model, default_layer, batch_size=batch_size, **precision_option,
                             **(options or {}).get(name, {}))
        for name in weights
    }
    return Fusion(explainers, weights, **fusion_options)


