"""Explainers: one base class owns the pipeline; each method overrides one hook.

`explainer(images, targets) -> maps [N, *spatial]` for every method; `make_explainer(name, model)`
builds one by its short name (the names the CLI and configs use; see `tfxmed.explain.registry`).
"""

from __future__ import annotations

from tfxmed.explain.base import Explainer, target_weights
from tfxmed.explain.cam import CamExplainer
from tfxmed.explain.eigen_cam import EigenCam, EigenGradCam
from tfxmed.explain.fusion import Fusion
from tfxmed.explain.grad_cam import GradCam
from tfxmed.explain.grad_cam_plus_plus import GradCamPlusPlus
from tfxmed.explain.gradient import GradientExplainer
from tfxmed.explain.hires_cam import HiResCam
from tfxmed.explain.integrated_gradients import IntegratedGradients
from tfxmed.explain.kernel_shap import KernelShap
from tfxmed.explain.layer_cam import LayerCam
from tfxmed.explain.lime import Lime
from tfxmed.explain.lrp import LayerwiseRelevancePropagation
from tfxmed.explain.occlusion import Occlusion
from tfxmed.explain.ops import gaussian_blur, minmax_maps, normalize_maps, spatial_axes, upsample
from tfxmed.explain.registry import METHODS, make_explainer
from tfxmed.explain.saliency import Saliency
from tfxmed.explain.score_cam import ScoreCam
from tfxmed.explain.smooth_grad import SmoothGrad
from tfxmed.explain.xgrad_cam import XGradCam

__all__ = [
    "METHODS", "make_explainer", "Explainer", "CamExplainer", "GradientExplainer", "GradCam", "GradCamPlusPlus",
    "XGradCam", "LayerCam", "HiResCam", "EigenCam", "EigenGradCam", "ScoreCam", "Saliency", "SmoothGrad",
    "IntegratedGradients", "Occlusion", "Lime", "KernelShap", "LayerwiseRelevancePropagation", "Fusion",
    "target_weights", "normalize_maps", "minmax_maps", "upsample", "gaussian_blur", "spatial_axes",
]
