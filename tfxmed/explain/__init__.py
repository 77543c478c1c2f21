"""Explainers: one base class owns the pipeline; each method overrides one hook."""

from tfxmed.explain.base import Explainer, normalize_maps, target_weights, upsample
from tfxmed.explain.grad_cam import CamExplainer, GradCam

__all__ = ["CamExplainer", "Explainer", "GradCam", "normalize_maps", "target_weights", "upsample"]
