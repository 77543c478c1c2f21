"""Classifiers: ResNet50 + channel-spatial attention, a small CNN, and the factory that builds them."""

from tfxmed.models.factory import (
    MODEL_NAMES,
    attention_model,
    build_model,
    default_explain_layer,
    find_layer,
    logits_model,
)

__all__ = ["MODEL_NAMES", "attention_model", "build_model", "default_explain_layer", "find_layer", "logits_model"]
