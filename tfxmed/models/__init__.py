"""Classifiers: ResNet50 + channel-spatial attention, a small CNN, the factory that builds them, and the
`ModelSpec` each declares for the explainers (`tfxmed.models.spec`)."""

from tfxmed.models.factory import (
    MODEL_NAMES,
    attention_model,
    build_model,
    find_layer,
    logits_model,
    model_spec,
)
from tfxmed.models.spec import ModelSpec, declare_spec, declared_spec, default_explain_layer

__all__ = [
    "MODEL_NAMES", "attention_model", "build_model", "default_explain_layer", "find_layer", "logits_model",
    "model_spec", "ModelSpec", "declare_spec", "declared_spec",
]
