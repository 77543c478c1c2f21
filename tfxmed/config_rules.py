"""The rules that tie configuration keys together, checked on the whole resolved `Experiment`.

A field's own type, choices and range are declared with it (`tfxmed.config`); what depends on two keys or
more (k-fold settings, step floors and caps, what a strategy or XLA cannot run, what a backbone needs of the
image size or weights) is checked here, once the file and the overrides are merged, by `check_across`.
"""

from __future__ import annotations

from typing import Any

from tfxmed.config_choices import APPLICATIONS, BRANCHES, HOST_SIDE_METHODS
from tfxmed.config_fields import ConfigError

__all__ = ["check_across", "profile_range"]


def profile_range(value: str | int) -> tuple[int, int] | None:
    """train.profile_batches "start,stop" or N → (start, stop); "" → None; else a ConfigError."""
    text = str(value)
    if not text.strip():
        return None
    parts = [part.strip() for part in text.split(",")]
    if len(parts) in (1, 2) and all(part.isdigit() for part in parts):
        start, stop = int(parts[0]), int(parts[-1])
        if 1 <= start <= stop:
            return start, stop
    raise ConfigError(f"train.profile_batches: expected '' (off), 'N' or 'start,stop' with 1 <= start <= stop "
                      f"(global training batches, e.g. '10,20'), got {text!r}")


def _check_device_graphs(config: Any) -> None:
    """What must compile with XLA (on a TPU, or with runtime.jit_compile: true) can: no host-side explainer."""
    runtime = config.runtime
    profile_range(config.train.profile_batches)
    if runtime.strategy == "tpu" and runtime.jit_compile is False:
        raise ConfigError("runtime.jit_compile: false is impossible with runtime.strategy=tpu (a TPU runs only "
                          "XLA-compiled graphs); use auto or true")
    if (runtime.jit_compile is True or runtime.strategy == "tpu") and config.explain.method in HOST_SIDE_METHODS:
        why = "runtime.strategy=tpu" if runtime.strategy == "tpu" else "runtime.jit_compile=true"
        raise ConfigError(f"explain.method: '{config.explain.method}' fits a surrogate per image on the host "
                          f"(NumPy/scikit-learn) and cannot compile with XLA, which {why} needs; choose an "
                          "in-graph method (the CAM family, saliency, smoothgrad, ig, occlusion, lrp, fusion or auto)")


def check_across(config: Any) -> Any:
    """Checks the rules that tie keys together on `config` (a resolved `tfxmed.config.Experiment`) and returns
    it; the first rule broken is a ConfigError naming the key, the value and what the other keys allow."""
    data, model = config.data, config.model
    if data.cv_folds == 1:
        raise ConfigError("data.cv_folds: must be 0 (no cross-validation) or >= 2, got 1")
    if data.cv_folds and not 0 <= data.cv_fold < data.cv_folds:
        raise ConfigError(f"data.cv_fold: must be in [0, {data.cv_folds}) with data.cv_folds={data.cv_folds}, "
                          f"got {data.cv_fold}")
    if not data.cv_folds and data.cv_fold != -1:
        raise ConfigError(f"data.cv_fold: must stay -1 without data.cv_folds (k-fold off), got {data.cv_fold}")
    if len(data.volume_spacing) not in (0, 3):
        raise ConfigError(f"data.volume_spacing: [] (keep the voxel grid) or 3 mm values (slices, rows, columns), "
                          f"got {data.volume_spacing}")
    train = config.train
    if train.min_steps and train.max_steps and train.min_steps > train.max_steps:
        raise ConfigError(f"train.min_steps: must be <= train.max_steps={train.max_steps}, got {train.min_steps}")
    if train.freeze_epochs and train.freeze_epochs >= train.epochs:
        raise ConfigError(f"train.freeze_epochs: must be < train.epochs={train.epochs} (epochs left to fine-tune "
                          f"the unfrozen model), got {train.freeze_epochs}")
    if train.batchnorm_batches and config.runtime.strategy in ("multiworker", "tpu"):
        raise ConfigError(f"train.batchnorm_batches: not supported with runtime.strategy={config.runtime.strategy} "
                          "(the statistics are recomputed by eager forward passes on one host); set it to 0")
    if train.freeze_epochs and config.runtime.strategy == "multiworker":
        raise ConfigError("train.freeze_epochs: not supported with runtime.strategy=multiworker (its custom training "
                          "loop has no second phase yet); freeze with cpu, gpu, mirrored or tpu, or set it to 0")
    if data.source == "tfrecords" and not data.tfrecord_dir:
        raise ConfigError("data.tfrecord_dir: data.source=tfrecords needs the converted TFRecords' folder, got ''")
    _check_device_graphs(config)
    if data.augment_backend == "albumentations" and config.runtime.strategy == "tpu":
        raise ConfigError("data.augment_backend: 'albumentations' runs Python on the input host, which TPU input "
                          "pipelines cannot; use 'tf' with runtime.strategy=tpu")
    smallest = 2 ** (len(model.small_cnn.blocks) - 1)  # small_cnn halves the image between stages
    if model.name == "small_cnn" and data.image_size < smallest:
        raise ConfigError(f"data.image_size: must be >= {smallest} for model.small_cnn.blocks="
                          f"{model.small_cnn.blocks}, got {data.image_size}")
    if model.name == "fusion":
        unknown = [name for name in model.fusion.members if name not in BRANCHES]
        if unknown or len(set(model.fusion.members)) != len(model.fusion.members):
            raise ConfigError(f"model.fusion.members: distinct names from {', '.join(BRANCHES)}, got "
                              f"{model.fusion.members}")
    fused = model.fusion.members if model.name == "fusion" else [model.name]
    if set(fused) & set(APPLICATIONS) and data.image_size < 32:
        raise ConfigError(f"data.image_size: keras.applications' {', '.join(set(fused) & set(APPLICATIONS))} "
                          f"needs >= 32 px, got {data.image_size}")
    resnet = model.resnet50_attention
    if model.weights == "imagenet" and model.name in ("small_cnn", "vit"):
        raise ConfigError(f"model.weights: 'imagenet' has no weights for model.name={model.name}; use none or a file")
    if model.name == "vit" and data.image_size % model.vit.patch_size:
        raise ConfigError(f"data.image_size: must be a multiple of model.vit.patch_size={model.vit.patch_size} for "
                          f"model.name=vit, got {data.image_size}")
    if model.weights == "imagenet" and model.name == "resnet50_attention" and (resnet.blocks, resnet.width) != (
            [3, 4, 6, 3], 64):
        raise ConfigError("model.weights: 'imagenet' needs the standard model.resnet50_attention.blocks=[3, 4, 6, 3] "
                          f"and width=64, got blocks={resnet.blocks}, width={resnet.width}")
    return config
