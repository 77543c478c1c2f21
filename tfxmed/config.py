"""Typed experiment configuration: defaults → YAML file → `--set a.b=value` overrides.

Every section is a dataclass. Unknown keys, values of the wrong type and values outside a field's
choices or range are errors raised when the configuration loads (`load_config`, `from_dict`), not
where a value is first used; each names the key, the value received and what is allowed. The
resolved configuration is written into each run directory.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from collections.abc import Sequence
from typing import Any, NamedTuple

import yaml

from tfxmed.storage import write_yaml_atomic

__all__ = [
    "ConfigError", "MODEL_NAMES", "DATA_SOURCES", "AUGMENT_BACKENDS", "STRATEGIES", "DISTANCES", "BINARIZE_METHODS",
    "EXPLAIN_METHODS", "SyntheticDataConfig", "DataConfig", "ResNetAttentionConfig", "SmallCnnConfig",
    "ModelConfig", "ConsistencyConfig", "TrainConfig", "ExplainConfig", "RuntimeConfig", "Experiment", "load_config",
    "from_dict", "apply_overrides", "to_dict", "save_config",
]

# Allowed values, one home each. tfxmed.models.factory and tfrecords_tools.prepare import theirs from
# here. The other lists are implemented in modules that import TensorFlow, which this module (imported
# by every command's parser) must not: they keep their tuple and tests/test_config.py pins it to this one.
MODEL_NAMES = ("resnet50_attention", "small_cnn")
DATA_SOURCES = ("synthetic", "medmnist", "tfrecords")
AUGMENT_BACKENDS = ("tf", "albumentations")  # tfxmed.data.augment_albumentations
STRATEGIES = ("cpu", "gpu", "mirrored", "multiworker", "tpu")  # tfxmed.distribute
DISTANCES = ("l1", "l2", "cosine")  # tfxmed.training.losses
BINARIZE_METHODS = ("fraction_of_max", "top_fraction", "otsu")  # tfxmed.metrics.localization
# tfxmed.explain.registry.METHODS, plus "auto": the method and layer chosen on validation masks
EXPLAIN_METHODS = ("gradcam", "gradcampp", "xgradcam", "layercam", "hirescam", "eigencam", "eigengradcam", "scorecam",
                   "saliency", "smoothgrad", "ig", "occlusion", "lime", "kernelshap", "lrp", "fusion", "auto")


class ConfigError(ValueError):
    """A configuration key or value is not allowed."""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


class _Interval(NamedTuple):
    """An allowed range written as in mathematics: "[0, 1)", "(0, inf)", "[1, inf)"."""

    low: float
    high: float
    low_closed: bool
    high_closed: bool

    @classmethod
    def parse(cls, text: str) -> _Interval:
        low, high = (float(bound) for bound in text[1:-1].split(","))
        if text[0] not in "[(" or text[-1] not in "])" or low > high:
            raise ValueError(f"not an interval: {text!r}")
        return cls(low, high, text[0] == "[", text[-1] == "]")

    def __contains__(self, value: object) -> bool:
        value = float(value)  # type: ignore[arg-type]
        above = value >= self.low if self.low_closed else value > self.low
        below = value <= self.high if self.high_closed else value < self.high
        return above and below

    def __str__(self) -> str:
        if self.high == math.inf:
            return f"{'>=' if self.low_closed else '>'} {_number(self.low)}"
        left, right = "[" if self.low_closed else "(", "]" if self.high_closed else ")"
        return f"in {left}{_number(self.low)}, {_number(self.high)}{right}"


def _field(default: Any, *, choices: Sequence = (), within: str = "", length: str = "") -> Any:
    """A dataclass field with the values it allows: `choices`, an interval `within` (for a list: each
    item's) and, for a list, its `length` interval. Checked by `_from_dict`."""
    metadata = {"choices": tuple(choices), "within": _Interval.parse(within) if within else None,
                "length": _Interval.parse(length) if length else None}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass
class SyntheticDataConfig:
    """The embedded synthetic chest-X-ray benchmark (see `tfxmed.data.synthetic`)."""

    image_size: int = _field(64, within="[32, inf)")  # SyntheticSpec.validate: the anatomy needs 32 px
    train_examples: int = _field(2000, within="[1, inf)")
    val_examples: int = _field(400, within="[1, inf)")
    test_examples: int = _field(400, within="[1, inf)")
    positive_fraction: float = _field(0.5, within="[0, 1]")
    difficulty: float = _field(0.5, within="[0, 1]")
    multi_label: bool = False
    confounder_strength: float = _field(0.0, within="[0, 1]")


@dataclasses.dataclass
class DataConfig:
    """Where the TFRecords are and how the tf.data pipeline reads them."""

    # "synthetic" (generated when missing) | "medmnist" (`npz` converted when missing) | "tfrecords"
    source: str = _field("synthetic", choices=DATA_SOURCES)
    tfrecord_dir: str = ""  # empty: data/synthetic-<hash of the spec> or data/<npz stem>-<hash of the file>
    npz: str = ""  # source=medmnist: path to a 2-D MedMNIST .npz (official train/val/test split kept)
    # >= 8: below, an explanation map is a handful of pixels (ResNet itself builds at any size); small_cnn
    # also needs 2^(stages - 1) px, as its pools halve the image (checked in `_check_across`).
    image_size: int = _field(64, within="[8, inf)")
    channels: int = _field(0, choices=(0, 1, 3))  # 0: the dataset's own (manifest); 1 or 3 to insist
    batch_size: int = _field(32, within="[1, inf)")  # global batch size, split across replicas
    shuffle_buffer: int = _field(2048, within="[1, inf)")
    augment: bool = True
    rotation_degrees: float = _field(15.0, within="[0, 180]")
    flip_left_right: bool = True
    flip_up_down: bool = False
    brightness: float = _field(0.2, within="[0, 1]")  # additive shift of [0, 1] images
    contrast: float = _field(0.2, within="[0, 1]")  # factor 1 ± contrast about the mean (> 1 would invert)
    crop_fraction: float = _field(0.1, within="[0, 1)")  # each side keeps 1 − U(0, crop_fraction)
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
    augment_backend: str = _field("tf", choices=AUGMENT_BACKENDS)
    # k-fold cross-validation (python -m tfxmed.crossval sets these): with cv_folds > 0, "train" and "val"
    # are the pooled train+val records whose fold is not / is cv_fold (stored fold, else a hash of the
    # patient or source id); "test" is untouched. 0: off (cv_fold stays -1); else >= 2, 0 <= cv_fold < cv_folds.
    cv_folds: int = _field(0, within="[0, inf)")
    cv_fold: int = -1
    synthetic: SyntheticDataConfig = dataclasses.field(default_factory=SyntheticDataConfig)


@dataclasses.dataclass
class ResNetAttentionConfig:
    """`model.name: resnet50_attention` (`tfxmed.models.resnet_attention`)."""

    blocks: list[int] = _field([3, 4, 6, 3], within="[1, inf)", length="[4, 4]")  # bottleneck blocks per stage
    width: int = _field(64, within="[1, inf)")  # filters of the first stage; later stages double it
    stem_pool: bool = True  # the stride-2 max pool after the stem; off keeps maps 2x finer


@dataclasses.dataclass
class SmallCnnConfig:
    """`model.name: small_cnn` (`tfxmed.models.small_cnn`)."""

    blocks: list[int] = _field([2, 2, 2], within="[1, inf)", length="[1, inf)")  # conv blocks per stage
    width: int = _field(16, within="[1, inf)")  # filters of the first stage; later stages double it
    kernel_size: int = _field(3, within="[1, inf)")


@dataclasses.dataclass
class ModelConfig:
    """Architecture of the classifier (see `tfxmed.models.factory`): shared settings, then one section per
    model, of which `name` picks the one used."""

    name: str = _field("resnet50_attention", choices=MODEL_NAMES)
    # "none" | "imagenet" (resnet50_attention with standard blocks and width) | path to a .weights.h5 / .keras file
    weights: str = "none"
    attention: bool = True  # CSAM (channel-spatial attention)
    dropout: float = _field(0.3, within="[0, 1)")  # before the logits
    resnet50_attention: ResNetAttentionConfig = dataclasses.field(default_factory=ResNetAttentionConfig)
    small_cnn: SmallCnnConfig = dataclasses.field(default_factory=SmallCnnConfig)


@dataclasses.dataclass
class ConsistencyConfig:
    """Explanation-consistency loss L_total = L_cls + α·d(Grad-CAM, IG) (`tfxmed.training.consistency`)."""

    enabled: bool = False
    alpha: float = _field(0.2, within="[0, inf)")
    distance: str = _field("l1", choices=DISTANCES)
    layer: str = ""  # Grad-CAM layer; empty: the explain layer
    ig_steps: int = _field(4, within="[1, inf)")
    ig_fraction: float = _field(0.25, within="(0, 1]")  # of each per-replica batch
    ig_gradient: bool = False  # True: also differentiate through IG (the naive, costly variant)
    every: int = _field(1, within="[1, inf)")  # add the term on every k-th step


@dataclasses.dataclass
class TrainConfig:
    """Optimisation settings (Adam with cosine-decayed learning rate)."""

    epochs: int = _field(10, within="[1, inf)")
    learning_rate: float = _field(1e-4, within="(0, inf)")
    warmup_epochs: int = _field(0, within="[0, inf)")
    beta_1: float = _field(0.9, within="[0, 1)")
    beta_2: float = _field(0.999, within="[0, 1)")
    label_smoothing: float = _field(0.1, within="[0, 1)")
    # > 0: keep an exponential moving average of the weights (Adam's use_ema); validation, the best
    # checkpoint and the final model use the averaged weights.
    ema_momentum: float = _field(0.0, within="[0, 1)")
    early_stopping_patience: int = _field(10, within="[0, inf)")
    tensorboard_images: int = _field(4, within="[0, inf)")
    steps_per_epoch: int = _field(0, within="[0, inf)")  # 0: one full pass over the training split
    consistency: ConsistencyConfig = dataclasses.field(default_factory=ConsistencyConfig)


@dataclasses.dataclass
class ExplainConfig:
    """Explanations used for monitoring, evaluation and the exported `explain` signature."""

    method: str = _field("gradcam", choices=EXPLAIN_METHODS)
    layer: str = ""  # empty: the model's default explanation layer
    binarize: str = _field("fraction_of_max", choices=BINARIZE_METHODS)  # see tfxmed.metrics.localization
    binarize_value: float = _field(0.5, within="(0, 1]")  # the fraction (ignored by otsu)
    pointing_tolerance: int = _field(0, within="[0, inf)")  # pixels
    num_overlays: int = _field(16, within="[0, inf)")


@dataclasses.dataclass
class RuntimeConfig:
    """Where and how a run executes."""

    strategy: str = _field("cpu", choices=STRATEGIES)
    # logical CPU devices to create (lets MirroredStrategy run on a CPU machine)
    cpu_devices: int = _field(1, within="[1, inf)")
    tpu: str = ""  # TPU name or grpc:// address for --strategy=tpu
    # multiworker: seconds to wait for every peer of $TF_CONFIG to come up before giving up
    start_timeout: float = _field(300.0, within="(0, inf)")
    seed: int = _field(42, within="[0, 4294967295]")  # NumPy's seed range (keras.utils.set_random_seed)
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


def _check_allowed(field: dataclasses.Field, value: Any, key: str) -> None:
    """Raises a ConfigError naming `key`, `value` and what is allowed when `value` is outside `field`'s metadata."""
    choices, within, length = (field.metadata.get(name) for name in ("choices", "within", "length"))
    if choices and value not in choices:
        raise ConfigError(f"{key}: {value!r} is not allowed; choose one of {', '.join(map(str, choices))}")
    if length is not None and len(value) not in length:
        count = _number(length.low) if length.low == length.high else str(length).removeprefix("in ")
        raise ConfigError(f"{key}: expected a list of {count} items, got {value!r}")
    for index, item in enumerate(value) if isinstance(value, list) else [(None, value)]:
        if within is not None and item not in within:
            raise ConfigError(f"{key if index is None else f'{key}[{index}]'}: must be {within}, got {item!r}")


def _moved_hint(cls: type, name: str, prefix: str) -> str:
    """' (did you mean model.small_cnn.width?)' for a key that lives one section deeper."""
    deeper = [f"{prefix}.{section}.{name}".lstrip(".") for section, hint in typing.get_type_hints(cls).items()
              if dataclasses.is_dataclass(hint) and name in {f.name for f in dataclasses.fields(hint)}]
    return f" (did you mean {' or '.join(deeper)}?)" if deeper else ""


def _from_dict(cls: type, values: dict, prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for name, value in values.items():
        key = f"{prefix}.{name}" if prefix else str(name)
        if name not in fields:
            raise ConfigError(f"unknown config key '{key}'; allowed keys here: {', '.join(fields)}"
                              f"{_moved_hint(cls, name, prefix)}")
        kwargs[name] = _coerce(value, hints[name], key)
        _check_allowed(fields[name], kwargs[name], key)
    return cls(**kwargs)


def _check_across(config: Experiment) -> Experiment:
    """The rules that tie keys together, checked on the whole resolved configuration."""
    data, model = config.data, config.model
    if data.cv_folds == 1:
        raise ConfigError("data.cv_folds: must be 0 (no cross-validation) or >= 2, got 1")
    if data.cv_folds and not 0 <= data.cv_fold < data.cv_folds:
        raise ConfigError(f"data.cv_fold: must be in [0, {data.cv_folds}) with data.cv_folds={data.cv_folds}, "
                          f"got {data.cv_fold}")
    if not data.cv_folds and data.cv_fold != -1:
        raise ConfigError(f"data.cv_fold: must stay -1 without data.cv_folds (k-fold off), got {data.cv_fold}")
    if data.source == "tfrecords" and not data.tfrecord_dir:
        raise ConfigError("data.tfrecord_dir: data.source=tfrecords needs the converted TFRecords' folder, got ''")
    if data.augment_backend == "albumentations" and config.runtime.strategy == "tpu":
        raise ConfigError("data.augment_backend: 'albumentations' runs Python on the input host, which TPU input "
                          "pipelines cannot; use 'tf' with runtime.strategy=tpu")
    smallest = 2 ** (len(model.small_cnn.blocks) - 1)  # small_cnn halves the image between stages
    if model.name == "small_cnn" and data.image_size < smallest:
        raise ConfigError(f"data.image_size: must be >= {smallest} for model.small_cnn.blocks="
                          f"{model.small_cnn.blocks}, got {data.image_size}")
    resnet = model.resnet50_attention
    standard_resnet = (model.name, resnet.blocks, resnet.width) == ("resnet50_attention", [3, 4, 6, 3], 64)
    if model.weights == "imagenet" and not standard_resnet:
        raise ConfigError("model.weights: 'imagenet' needs model.name=resnet50_attention with its standard "
                          "model.resnet50_attention.blocks=[3, 4, 6, 3] and width=64, got "
                          f"name={model.name}, blocks={resnet.blocks}, width={resnet.width}")
    return config


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
        try:
            parsed = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as error:
            raise ConfigError(f"override '{override}': the value is not valid YAML ({type(error).__name__})") from None
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
    return _check_across(_from_dict(Experiment, values))


def load_config(path: str | os.PathLike | None = None, overrides: Sequence[str] = ()) -> Experiment:
    """Builds an `Experiment`: defaults, then the YAML file at `path`, then `overrides` in order; validated."""
    values = to_dict(Experiment())
    if path is not None:
        with open(path, encoding="utf-8") as stream:
            loaded = yaml.safe_load(stream) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level, got {type(loaded).__name__}")
        try:
            _from_dict(Experiment, loaded)  # name the file with a bad key or value before merging
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from None
        values = _deep_merge(values, loaded)
    values = apply_overrides(values, overrides)
    return from_dict(values)


def save_config(config: Experiment, path: str | os.PathLike) -> None:
    """Writes the resolved configuration as YAML, atomically."""
    write_yaml_atomic(to_dict(config), path)
