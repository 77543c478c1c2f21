"""`train.freeze_epochs`: fine-tuning in two phases, the backbone frozen first, then everything at a lower rate.

Phase 1 trains only the layers a pretrained backbone lacks, the attention module (CSAM) and the `logits`
head, for `train.freeze_epochs` epochs; every other layer with weights is frozen, and a frozen
BatchNormalization runs in inference mode (Keras 3: `trainable=False` means inference mode), so its
moving statistics keep the pretrained values. Phase 2 unfreezes every layer and trains the remaining
epochs with a fresh Adam at `train.learning_rate × train.unfreeze_lr_factor` (cosine decay, no warm-up).

Resuming: phase 1 backs up into `RUN/backup_frozen`; when it ends, the classifier's weights are written
to `RUN/frozen_phase.weights.h5` (atomically), so a run killed in phase 2 skips phase 1, starts from those
weights, and `BackupAndRestore` then restores phase 2's own latest epoch over them. The file is removed
when the run finishes.
"""

from __future__ import annotations

import warnings

import keras

from tfxmed.models.layers.attention import ChannelAttention, SpatialAttention
from tfxmed.models.spec import declared_spec
from tfxmed.storage import atomic_path, exists, remove

__all__ = ["backbone_layers", "set_backbone_frozen", "FrozenPhase"]

TRAINED_WHILE_FROZEN = (ChannelAttention, SpatialAttention)


def backbone_layers(classifier: keras.Model) -> list[keras.layers.Layer]:
    """The layers `train.freeze_epochs` freezes: every layer with weights but attention modules and the head."""
    spec = declared_spec(classifier)
    head = spec.logits_layer if spec is not None and spec.logits_layer else "logits"
    return [layer for layer in classifier.layers
            if layer.weights and layer.name != head and not isinstance(layer, TRAINED_WHILE_FROZEN)]


def set_backbone_frozen(classifier: keras.Model, frozen: bool) -> list[str]:
    """Freezes (or unfreezes) `backbone_layers(classifier)`; returns their names. Compile after calling it."""
    layers = backbone_layers(classifier)
    if not layers:
        raise ValueError(f"train.freeze_epochs: model '{classifier.name}' has no backbone layer to freeze")
    for layer in layers:
        layer.trainable = not frozen
    return [layer.name for layer in layers]


class FrozenPhase:
    """Where phase 1 of a run keeps its backup and the weights it ends with (see the module docstring; the paths
    are the run's, `tfxmed.runs.RunPaths`, which also counts them when deciding whether a run finished)."""

    def __init__(self, run_dir: str):
        from tfxmed.runs import RunPaths

        paths = RunPaths(run_dir)
        self.backup, self.weights = paths.frozen_backup, paths.frozen_weights

    @property
    def done(self) -> bool:
        return exists(self.weights)

    def finish(self, classifier: keras.Model) -> None:
        with atomic_path(self.weights, ".weights.h5") as temporary:
            classifier.save_weights(temporary)

    def restore(self, classifier: keras.Model) -> None:
        with warnings.catch_warnings():  # phase 1's optimizer state is left behind on purpose: phase 2 has its own
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            classifier.load_weights(self.weights)

    def clean(self) -> None:
        remove(self.weights)
