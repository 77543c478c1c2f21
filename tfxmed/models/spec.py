"""The model ↔ explainer contract: a classifier declares the layers explainers need.

Each tfxmed model builder returns its model with a `ModelSpec` attached (`declare_spec`), computed from
the builder's own arguments: the layer CAM methods and the consistency loss explain by default, the
layer whose output is the pre-activation scores, and the attention map if the model has one.
Explainers, the consistency loss, export and evaluation read it (`declared_spec`) instead of guessing
from layer names. Keras does not save it: `tfxmed.runs.load_run` re-attaches it from the run's config
(`tfxmed.models.factory.model_spec`), and code that copies a model passes it on.

Models built elsewhere can declare one too (`declare_spec(model, ModelSpec("features"))`). Without
one, a documented generic fallback applies, with no tfxmed layer names in it: the explained layer is
the last top-level layer with a 4-D output (`default_explain_layer`), and the scores are the input of
a final softmax or sigmoid, with a warning (`tfxmed.explain.base.score_model`).
"""

from __future__ import annotations

import dataclasses

__all__ = ["MEMBERS", "ModelSpec", "declare_spec", "declared_spec", "default_explain_layer", "SPEC_ATTRIBUTE"]

SPEC_ATTRIBUTE = "tfxmed_spec"
# The explain layer of an ensemble: each member's map at its own layer, weighted (see ModelSpec.member_layers).
MEMBERS = "members"


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """The layers of a classifier that explainers need, by name.

    Args:
        explain_layer: the feature layer CAM methods (and the consistency loss) explain by default.
        logits_layer: the layer whose output is the pre-activation class scores; None when the model's
            output already is.
        attention_layer: the layer whose output is the attention map [N, h, w, 1], if any.
        candidate_layers: other feature layers (e.g. earlier stages, finer grids) that
            `explain.method: auto` may choose on the validation masks.
        member_layers, member_weights: an ensemble's members' feature layers and their weights in its
            combination. With `explain_layer=MEMBERS`, the CAM family explains the ensemble as the
            weighted mean of the members' normalised maps, each at its own layer, upsampled to the input
            (`tfxmed.explain.registry`).
    """

    explain_layer: str
    logits_layer: str | None = "logits"
    attention_layer: str | None = None
    candidate_layers: tuple[str, ...] = ()
    member_layers: tuple[str, ...] = ()
    member_weights: tuple[float, ...] = ()

    def __post_init__(self):
        if len(self.member_layers) != len(self.member_weights):
            raise ValueError(f"member_layers {self.member_layers} and member_weights {self.member_weights} differ in "
                             "length")
        if self.explain_layer == MEMBERS and not self.member_layers:
            raise ValueError(f"explain_layer '{MEMBERS}' needs member_layers (an ensemble's)")

    @classmethod
    def from_dict(cls, values: dict) -> ModelSpec:
        """The spec `dataclasses.asdict` wrote (lists back to tuples), e.g. from a run's `run_info.json`."""
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in values.items()})


def declare_spec(model, spec: ModelSpec):
    """Attaches `spec` to `model` (replacing any earlier one) and returns the model."""
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"spec must be a ModelSpec, got {type(spec).__name__}")
    setattr(model, SPEC_ATTRIBUTE, spec)
    return model


def declared_spec(model) -> ModelSpec | None:
    """The `ModelSpec` attached to `model`, or None for a model that declares none."""
    spec = getattr(model, SPEC_ATTRIBUTE, None)
    return spec if isinstance(spec, ModelSpec) else None


def default_explain_layer(model) -> str:
    """The layer explained when none is given: the declared one, else the last layer with a 4-D output.

    The fallback is for models without a `ModelSpec`; it looks at top-level layers only, so a model
    whose feature map sits inside a nested backbone should declare it (or the caller names the layer).
    """
    spec = declared_spec(model)
    if spec is not None:
        return spec.explain_layer
    spatial = [layer.name for layer in model.layers if len(getattr(layer, "output", None).shape or ()) == 4]
    if not spatial:
        raise ValueError(f"model '{model.name}' declares no explain layer (tfxmed.models.spec.ModelSpec) and has "
                         "no 4-D feature map to fall back on; name the layer to explain")
    return spatial[-1]
