"""Typed experiment configuration: defaults → YAML file → `--set a.b=value` overrides.

Every section is a dataclass; unknown keys and values of the wrong type are errors that name the key
and say what is allowed. The resolved configuration is written into each run directory.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from typing import Any, Sequence

import yaml

from tfxmed.storage import write_yaml_atomic

__all__ = [
    "ConfigError",
    "SyntheticDataConfig",
    "DataConfig",
    "ModelConfig",
    "TrainConfig",
    "ExplainConfig",
    "RuntimeConfig",
    "Experiment",
    "load_config",
    "apply_overrides",
    "to_dict",
    "save_config",
]


class ConfigError(ValueError):
    """A configuration key or value is not allowed."""


@dataclasses.dataclass
class SyntheticDataConfig:
    """The embedded synthetic chest-X-ray benchmark (see `tfxmed.data.synthetic`)."""

    image_size: int = 64
    train_examples: int = 2000
    val_examples: int = 400
    test_examples: int = 400
    positive_fraction: float = 0.5
    difficulty: float = 0.5
    multi_label: bool = False
    confounder_strength: float = 0.0


@dataclasses.dataclass
class DataConfig:
    """Where the TFRecords are and how the tf.data pipeline reads them."""

    # "synthetic" (generated when missing) | "medmnist" (`npz` converted when missing) | "tfrecords"
    source: str = "synthetic"
    tfrecord_dir: str = ""  # empty: data/synthetic-<hash of the spec> or data/<npz stem>-<hash of the file>
    npz: str = ""  # source=medmnist: path to a 2-D MedMNIST .npz (official train/val/test split kept)
    image_size: int = 64
    channels: int = 0  # 0: the dataset's own (manifest); 1 or 3 to insist
    batch_size: int = 32  # global batch size, split across replicas
    shuffle_buffer: int = 2048
    augment: bool = True
    rotation_degrees: float = 15.0
    flip_left_right: bool = True
    flip_up_down: bool = False
    brightness: float = 0.2
    contrast: float = 0.2
    crop_fraction: float = 0.1
    class_weights: bool = False
    # Imbalance in tf.data: draw training records class-balanced (single-label; each class's records
    # repeat independently, so an "epoch" of steps sees every class equally often).
    oversample: bool = False
    # Keep decoded, resized images in memory after the first pass (augmentation still runs every epoch);
    # for datasets that fit in RAM (float32 image + mask: 32 KiB per 64-px grey image). Records are read
    # in the first pass's order, then mixed by shuffle_buffer each pass.
    cache: bool = False
    # "tf" (pure TF ops, any strategy) | "albumentations" (host-side Python via tf.numpy_function;
    # refused under TPU)
    augment_backend: str = "tf"
    # k-fold cross-validation (python -m tfxmed.crossval sets these): with cv_folds > 0, "train" and "val"
    # are the pooled train+val records whose fold is not / is cv_fold (stored fold, else a hash of the
    # patient or source id); "test" is untouched.
    cv_folds: int = 0
    cv_fold: int = -1
    synthetic: SyntheticDataConfig = dataclasses.field(default_factory=SyntheticDataConfig)


@dataclasses.dataclass
class ModelConfig:
    """Architecture of the classifier (see `tfxmed.models.factory`)."""

    name: str = "resnet50_attention"  # "resnet50_attention" | "small_cnn"
    weights: str = "none"  # "none" | "imagenet" | path to a local .weights.h5 / .keras file
    attention: bool = True
    dropout: float = 0.3
    width: int = 64  # filters of the first stage; later stages double it
    blocks: list[int] = dataclasses.field(default_factory=lambda: [3, 4, 6, 3])
    kernel_size: int = 3  # small_cnn's convolution size (ResNet50 keeps its own)
    stem_pool: bool = True  # ResNet's stride-2 max pool after the stem; off keeps maps 2x finer


@dataclasses.dataclass
class ConsistencyConfig:
    """Explanation-consistency loss L_total = L_cls + α·d(Grad-CAM, IG) (`tfxmed.training.consistency`)."""

    enabled: bool = False
    alpha: float = 0.2
    distance: str = "l1"  # "l1" | "l2" | "cosine"
    layer: str = ""  # Grad-CAM layer; empty: the explain layer
    ig_steps: int = 4
    ig_fraction: float = 0.25  # of each per-replica batch
    ig_gradient: bool = False  # True: also differentiate through IG (the naive, costly variant)
    every: int = 1  # add the term on every k-th step


@dataclasses.dataclass
class TrainConfig:
    """Optimisation settings (Adam with cosine-decayed learning rate)."""

    epochs: int = 10
    learning_rate: float = 1e-4
    warmup_epochs: int = 0
    beta_1: float = 0.9
    beta_2: float = 0.999
    label_smoothing: float = 0.1
    # > 0: keep an exponential moving average of the weights (Adam's use_ema); validation, the best
    # checkpoint and the final model use the averaged weights.
    ema_momentum: float = 0.0
    early_stopping_patience: int = 10
    tensorboard_images: int = 4
    steps_per_epoch: int = 0  # 0: one full pass over the training split
    consistency: ConsistencyConfig = dataclasses.field(default_factory=ConsistencyConfig)


@dataclasses.dataclass
class ExplainConfig:
    """Explanations used for monitoring, evaluation and the exported `explain` signature."""

    method: str = "gradcam"
    layer: str = ""  # empty: the model's default explanation layer
    binarize: str = "fraction_of_max"  # see tfxmed.metrics.localization.binarize
    binarize_value: float = 0.5
    pointing_tolerance: int = 0
    num_overlays: int = 16


@dataclasses.dataclass
class RuntimeConfig:
    """Where and how a run executes."""

    strategy: str = "cpu"  # "cpu" | "gpu" | "mirrored" | "multiworker" | "tpu"
    cpu_devices: int = 1  # logical CPU devices to create (lets MirroredStrategy run on a CPU machine)
    tpu: str = ""  # TPU name or grpc:// address for --strategy=tpu
    seed: int = 42
    run_dir: str = "runs/quickstart"
    mixed_precision: bool = False


@dataclasses.dataclass
class Experiment:
    """A whole experiment: data, model, training, explanation and runtime settings."""

    name: str = "quickstart"
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    explain: ExplainConfig = dataclasses.field(default_factory=ExplainConfig)
    runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", str(annotation))


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Checks `value` against the field type, converting only where it is lossless and obvious."""
    origin = typing.get_origin(annotation)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping of {annotation.__name__} fields, got {value!r}")
        return _from_dict(annotation, value, key)
    if origin is list:
        (item_type,) = typing.get_args(annotation)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list of {_type_name(item_type)}, got {value!r}")
        return [_coerce(item, item_type, f"{key}[{i}]") for i, item in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            try:
                return _coerce(value, option, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {annotation}, got {value!r}")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return value


def _from_dict(cls: type, values: dict, prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    allowed = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for name, value in values.items():
        key = f"{prefix}.{name}" if prefix else str(name)
        if name not in allowed:
            raise ConfigError(f"unknown config key '{key}'; allowed keys here: {', '.join(allowed)}")
        kwargs[name] = _coerce(value, hints[name], key)
    return cls(**kwargs)


def to_dict(config: Any) -> dict:
    """The configuration as plain nested dicts (YAML/JSON-serialisable)."""
    return dataclasses.asdict(config)


def _deep_merge(base: dict, update: dict) -> dict:
    merged = dict(base)
    for name, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(name), dict):
            merged[name] = _deep_merge(merged[name], value)
        else:
            merged[name] = value
    return merged


def apply_overrides(values: dict, overrides: Sequence[str]) -> dict:
    """Applies `a.b=value` strings (values parsed as YAML) to a nested dict, in order."""
    result = values
    for override in overrides:
        if "=" not in override:
            raise ConfigError(f"override '{override}' must look like section.key=value")
        dotted, raw = override.split("=", 1)
        parsed = yaml.safe_load(raw) if raw.strip() else ""
        update: dict = {}
        cursor = update
        parts = dotted.strip().split(".")
        for part in parts[:-1]:
            cursor = cursor.setdefault(part, {})
        cursor[parts[-1]] = parsed
        result = _deep_merge(result, update)
    return result


def from_dict(values: dict) -> Experiment:
    """An `Experiment` from nested dicts (e.g. `to_dict` output after `apply_overrides`), validated."""
    return _from_dict(Experiment, values)


def load_config(path: str | os.PathLike | None = None, overrides: Sequence[str] = ()) -> Experiment:
    """Builds an `Experiment`: defaults, then the YAML file at `path`, then `overrides` in order."""
    values = to_dict(Experiment())
    if path is not None:
        with open(path, encoding="utf-8") as stream:
            loaded = yaml.safe_load(stream) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level, got {type(loaded).__name__}")
        try:
            _from_dict(Experiment, loaded)  # name the bad key relative to the file before merging
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from None
        values = _deep_merge(values, loaded)
    values = apply_overrides(values, overrides)
    return _from_dict(Experiment, values)


def save_config(config: Experiment, path: str | os.PathLike) -> None:
    """Writes the resolved configuration as YAML, atomically."""
    write_yaml_atomic(to_dict(config), path)
