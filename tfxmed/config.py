"""Typed experiment configuration: defaults → YAML file → `--set a.b=value` overrides.

Every section is a dataclass. Unknown keys, values of the wrong type and values outside a field's
choices or range are errors raised when the configuration loads (`load_config`, `from_dict`), not
where a value is first used; each names the key, the value received and what is allowed. The
resolved configuration is written into each run directory.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import yaml

from tfxmed import config_fields as fields
from tfxmed.config_choices import (
    APPLICATIONS,
    AUGMENT_BACKENDS,
    BINARIZE_METHODS,
    BRANCHES,
    CALIBRATION_METHODS,
    DATA_SOURCES,
    DISTANCES,
    DOWNSAMPLES,
    EXPLAIN_METHODS,
    HOST_SIDE_METHODS,
    IG_BASELINES,
    JIT_COMPILE,
    MODEL_NAMES,
    MONITORS,
    POOLINGS,
    RECORD_ENCODINGS,
    STRATEGIES,
    VIT_SIZES,
    VOLUME_MODELS,
)
from tfxmed.config_fields import ConfigError, apply_overrides, field
from tfxmed.config_rules import check_across
from tfxmed.storage import open_file, write_yaml_atomic

__all__ = [
    "ConfigError", "APPLICATIONS", "BRANCHES", "MODEL_NAMES", "VOLUME_MODELS", "POOLINGS", "IG_BASELINES",
    "DOWNSAMPLES",
    "DATA_SOURCES", "AUGMENT_BACKENDS", "STRATEGIES", "JIT_COMPILE", "HOST_SIDE_METHODS",
    "DISTANCES", "BINARIZE_METHODS",
    "RECORD_ENCODINGS", "EXPLAIN_METHODS", "SyntheticDataConfig", "DataConfig", "ResNetAttentionConfig",
    "SmallCnnConfig",
    "ModelConfig", "ConsistencyConfig", "TrainConfig", "ExplainConfig", "RuntimeConfig", "Experiment", "load_config",
    "from_dict", "apply_overrides", "to_dict", "save_config",
]


@dataclasses.dataclass
class SyntheticDataConfig:
    """The embedded synthetic chest-X-ray benchmark (see `tfxmed.data.synthetic`)."""

    image_size: int = field(64, within="[32, inf)")  # SyntheticSpec.validate: the anatomy needs 32 px
    train_examples: int = field(2000, within="[1, inf)")
    val_examples: int = field(400, within="[1, inf)")
    test_examples: int = field(400, within="[1, inf)")
    positive_fraction: float = field(0.5, within="[0, 1]")
    difficulty: float = field(0.5, within="[0, 1]")
    multi_label: bool = False
    confounder_strength: float = field(0.0, within="[0, 1]")


@dataclasses.dataclass
class DataConfig:
    """Where the TFRecords are and how the tf.data pipeline reads them."""

    # "synthetic" (generated when missing) | "medmnist" (`npz` converted when missing) | "tfrecords" |
    # "synthetic_volumes" (the chest-CT volume benchmark, `synthetic`'s sizes and counts, generated when missing)
    source: str = field("synthetic", choices=DATA_SOURCES)
    tfrecord_dir: str = ""  # empty: data/synthetic-<hash of the spec> or data/<npz stem>-<hash of the file>
    npz: str = ""  # source=medmnist: path to a 2-D MedMNIST .npz (official train/val/test split kept)
    # How synthetic/medmnist conversion stores images (tfxmed.data.features): auto = raw uint8 pixels for
    # small images (nothing to decode when read; docs/benchmarks.md), PNG for large ones. Readers take any.
    encoding: str = field("auto", choices=RECORD_ENCODINGS)
    # >= 8: below, an explanation map is a handful of pixels (ResNet itself builds at any size); small_cnn
    # also needs 2^(stages - 1) px, as its pools halve the image (checked in `_check_across`).
    image_size: int = field(64, within="[8, inf)")
    channels: int = field(0, choices=(0, 1, 3))  # 0: the dataset's own (manifest); 1 or 3 to insist
    batch_size: int = field(32, within="[1, inf)")  # global batch size, split across replicas
    shuffle_buffer: int = field(2048, within="[1, inf)")
    augment: bool = True
    rotation_degrees: float = field(15.0, within="[0, 180]")
    flip_left_right: bool = True
    flip_up_down: bool = False
    brightness: float = field(0.2, within="[0, 1]")  # additive shift of [0, 1] images
    contrast: float = field(0.2, within="[0, 1]")  # factor 1 ± contrast about the mean (> 1 would invert)
    crop_fraction: float = field(0.1, within="[0, 1)")  # each side keeps 1 − U(0, crop_fraction)
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
    augment_backend: str = field("tf", choices=AUGMENT_BACKENDS)
    # k-fold cross-validation (python -m tfxmed.crossval sets these): with cv_folds > 0, "train" and "val"
    # are the pooled train+val records whose fold is not / is cv_fold (stored fold, else a hash of the
    # patient or source id); "test" is untouched. 0: off (cv_fold stays -1); else >= 2, 0 <= cv_fold < cv_folds.
    cv_folds: int = field(0, within="[0, inf)")
    cv_fold: int = -1
    # Volumes (a manifest of kind "volume"; tfxmed.data.volume_pipeline): resampled to volume_depth ×
    # image_size × image_size voxels (volume_depth 0: image_size); with volume_spacing [mm, mm, mm], first to
    # that spacing, then centre-cropped or zero-padded to the shape. A batch of decoded volumes (and masks)
    # above volume_batch_megabytes is refused with the largest batch that fits.
    volume_depth: int = field(0, within="[0, inf)")
    volume_spacing: list[float] = field([], within="(0, inf)", length="[0, 3]")
    volume_batch_megabytes: float = field(512.0, within="(0, inf)")
    synthetic: SyntheticDataConfig = dataclasses.field(default_factory=SyntheticDataConfig)


@dataclasses.dataclass
class ResNetAttentionConfig:
    """`model.name: resnet50_attention` (`tfxmed.models.resnet_attention`)."""

    blocks: list[int] = field([3, 4, 6, 3], within="[1, inf)", length="[4, 4]")  # bottleneck blocks per stage
    width: int = field(64, within="[1, inf)")  # filters of the first stage; later stages double it
    stem_pool: bool = True  # the stride-2 max pool after the stem; off keeps maps 2x finer
    # How stages 3-5 halve the grid: "stride" (ResNet50) or "avgpool" (a 2x2 average pool before the
    # 1x1 convs: no top-left border artefact in the feature maps; tfxmed.models.resnet_attention)
    downsample: str = field("stride", choices=DOWNSAMPLES)


@dataclasses.dataclass
class FusionConfig:
    """`model.name: fusion` (`tfxmed.models.fusion`): the pooled features of these backbones, each built from
    its own section of `model` (attention, dropout aside), concatenated before one head."""

    members: list[str] = field(["resnet50_attention", "densenet121"], length="[2, inf)")


@dataclasses.dataclass
class VitConfig:
    """`model.name: vit` (`tfxmed.models.vit`): ViT-Ti/S/B; CSAM (model.attention) on the patch grid before the
    last block."""

    size: str = field("b", choices=VIT_SIZES)  # ti: width 192, 3 heads; s: 384, 6; b: 768, 12 (12 blocks each)
    patch_size: int = field(16, within="[1, inf)")  # data.image_size must be a multiple of it
    depth: int = field(0, within="[0, inf)")  # transformer blocks; 0: the size's 12 (fewer for CPU tests)
    token_dropout: float = field(0.0, within="[0, 1)")  # inside the blocks (attention and MLP)


@dataclasses.dataclass
class ResNet3dConfig:
    """`model.name: resnet3d` (`tfxmed.models.resnet3d`): basic 3-D residual blocks, CSAM after stage 3."""

    blocks: list[int] = field([1, 1, 1, 1], within="[1, inf)", length="[4, 4]")
    width: int = field(16, within="[1, inf)")  # filters of the first stage; later stages double it


@dataclasses.dataclass
class CnnRnnConfig:
    """`model.name: cnn_rnn` (`tfxmed.models.cnn_rnn`): a 2-D CNN per slice, a bidirectional GRU, slice attention."""

    width: int = field(16, within="[1, inf)")
    stages: int = field(3, within="[1, inf)")
    units: int = field(32, within="[1, inf)")  # GRU units in each direction


@dataclasses.dataclass
class SmallCnnConfig:
    """`model.name: small_cnn` (`tfxmed.models.small_cnn`)."""

    blocks: list[int] = field([2, 2, 2], within="[1, inf)", length="[1, inf)")  # conv blocks per stage
    width: int = field(16, within="[1, inf)")  # filters of the first stage; later stages double it
    kernel_size: int = field(3, within="[1, inf)")


@dataclasses.dataclass
class ModelConfig:
    """Architecture of the classifier (see `tfxmed.models.factory`): shared settings, then one section per
    model, of which `name` picks the one used."""

    name: str = field("resnet50_attention", choices=MODEL_NAMES)
    # "none" | "imagenet" (resnet50_attention with standard blocks and width, densenet121, efficientnetb0, vgg16;
    # read from Keras' cache, never downloaded: tfxmed.models.weights) | path to a .weights.h5 / .keras file
    weights: str = "none"
    # A finished tfxmed run to start from (pretrain on one dataset, fine-tune on another): every layer whose
    # name and weight shapes match is copied (tfxmed.models.weights.init_from_run); the rest, e.g. a head
    # with another number of classes, keeps its fresh initialisation. Empty: none.
    init_from: str = ""
    attention: bool = True  # CSAM (channel-spatial attention)
    dropout: float = field(0.3, within="[0, 1)")  # before the logits
    # Global pooling before the logits (tfxmed.models.layers.pooling): "avg", "max", or "lse" (log-sum-exp
    # with sharpness lse_r, between the two). Max/LSE make the logit follow the strongest location.
    pooling: str = field("avg", choices=POOLINGS)
    lse_r: float = field(5.0, within="(0, inf)")
    resnet50_attention: ResNetAttentionConfig = dataclasses.field(default_factory=ResNetAttentionConfig)
    small_cnn: SmallCnnConfig = dataclasses.field(default_factory=SmallCnnConfig)
    vit: VitConfig = dataclasses.field(default_factory=VitConfig)
    resnet3d: ResNet3dConfig = dataclasses.field(default_factory=ResNet3dConfig)
    cnn_rnn: CnnRnnConfig = dataclasses.field(default_factory=CnnRnnConfig)
    fusion: FusionConfig = dataclasses.field(default_factory=FusionConfig)


@dataclasses.dataclass
class ConsistencyConfig:
    """Explanation-consistency loss L_total = L_cls + α·d(Grad-CAM, IG) (`tfxmed.training.consistency`)."""

    enabled: bool = False
    alpha: float = field(0.2, within="[0, inf)")
    distance: str = field("l1", choices=DISTANCES)
    layer: str = ""  # Grad-CAM layer; empty: the explain layer
    ig_steps: int = field(4, within="[1, inf)")
    ig_fraction: float = field(0.25, within="(0, 1]")  # of each per-replica batch
    ig_gradient: bool = False  # True: also differentiate through IG (the naive, costly variant)
    every: int = field(1, within="[1, inf)")  # add the term on every k-th step
    # IG's baseline: "zero", or "blurred" (the image blurred at ig_blur_sigma px): the target then points
    # at small findings instead of the whole anatomy (tfxmed.training.consistency).
    ig_baseline: str = field("zero", choices=IG_BASELINES)
    ig_blur_sigma: float = field(2.0, within="(0, inf)")


@dataclasses.dataclass
class TrainConfig:
    """Optimisation settings (Adam with cosine-decayed learning rate)."""

    epochs: int = field(10, within="[1, inf)")
    learning_rate: float = field(1e-4, within="(0, inf)")
    warmup_epochs: int = field(0, within="[0, inf)")
    beta_1: float = field(0.9, within="[0, 1)")
    beta_2: float = field(0.999, within="[0, 1)")
    label_smoothing: float = field(0.1, within="[0, 1)")
    # > 0: keep an exponential moving average of the weights (Adam's use_ema); validation, the best
    # checkpoint and the final model use the averaged weights.
    ema_momentum: float = field(0.0, within="[0, 1)")
    # > 0: before each validation, every trainable BatchNormalization layer gets the exact mean of its
    # batch statistics over this many training batches (tfxmed.training.batchnorm), instead of Keras's
    # moving average, which lags while the weights change fast (short budgets, large backbones from
    # scratch). 0: Keras's moving averages.
    batchnorm_batches: int = field(0, within="[0, inf)")
    tensorboard_images: int = field(4, within="[0, inf)")
    steps_per_epoch: int = field(0, within="[0, inf)")  # 0: one full pass over the training split
    # A budget in optimisation steps (tfxmed.training.loop.step_budget): epochs × steps per pass, raised to
    # min_steps and capped at max_steps (0: no bound); `epochs` then counts validation rounds, each of
    # total / epochs steps. Small datasets get enough updates; large ones a bounded time.
    min_steps: int = field(0, within="[0, inf)")
    max_steps: int = field(0, within="[0, inf)")
    # What the kept checkpoint (RUN/checkpoints/best.keras) and early stopping follow: the best validation AUC
    # or the lowest validation loss. When validation AUC is saturated (≈ 0.99), its maximum can fall on an
    # early, high-learning-rate epoch whose decision threshold is off; the loss also sees calibration.
    monitor: str = field("val_auc", choices=MONITORS)
    # Early stopping watches `monitor` (as the best checkpoint does) with this patience in epochs.
    early_stopping_patience: int = field(10, within="[0, inf)")
    # Fine-tuning in two phases (tfxmed.training.freezing): the backbone (every layer with weights but the
    # attention module and the `logits` head) is frozen, BatchNorm in inference mode, for the first
    # freeze_epochs; then all layers train at learning_rate × unfreeze_lr_factor (cosine, no warm-up).
    freeze_epochs: int = field(0, within="[0, inf)")
    unfreeze_lr_factor: float = field(0.1, within="(0, inf)")
    # TensorBoard profile of these global training batches, "start,stop" (1-based, e.g. "10,20") or "N";
    # empty: off. Written to RUN/tensorboard/train/plugins/profile/<time>/<host>.xplane.pb.
    profile_batches: str | int = ""
    # Probabilities that leave tfxmed are calibrated on the validation split (tfxmed.calibration):
    # auto = per-label Platt scaling (multi-label), temperature scaling (more than two classes), and for two
    # classes temperature or Platt scaling of the logit difference, whichever predicts validation better
    # out of fold; none = raw.
    calibration: str = field("auto", choices=CALIBRATION_METHODS)
    consistency: ConsistencyConfig = dataclasses.field(default_factory=ConsistencyConfig)


@dataclasses.dataclass
class ExplainConfig:
    """Explanations used for monitoring, evaluation and the exported `explain` signature."""

    method: str = field("gradcam", choices=EXPLAIN_METHODS)
    layer: str = ""  # empty: the model's default explanation layer
    binarize: str = field("fraction_of_max", choices=BINARIZE_METHODS)  # see tfxmed.metrics.localization
    binarize_value: float = field(0.5, within="(0, 1]")  # the fraction (ignored by otsu)
    pointing_tolerance: int = field(0, within="[0, inf)")  # pixels
    num_overlays: int = field(16, within="[0, inf)")


@dataclasses.dataclass
class RuntimeConfig:
    """Where and how a run executes."""

    strategy: str = field("cpu", choices=STRATEGIES)
    # logical CPU devices to create (lets MirroredStrategy run on a CPU machine)
    cpu_devices: int = field(1, within="[1, inf)")
    tpu: str = ""  # TPU name or grpc:// address for --strategy=tpu
    # multiworker: seconds to wait for every peer of $TF_CONFIG to come up before giving up
    start_timeout: float = field(300.0, within="(0, inf)")
    seed: int = field(42, within="[0, 4294967295]")  # NumPy's seed range (keras.utils.set_random_seed)
    run_dir: str = "runs/quickstart"
    # mixed_float16 on a GPU, mixed_bfloat16 elsewhere (CPU with AVX512-BF16/AMX, TPU); variables stay float32
    mixed_precision: bool = False
    # XLA for the train and evaluation steps, the in-graph explainers and the exported signatures' compute:
    # true | false | auto (on under runtime.strategy=tpu, where XLA is the only way to run; elsewhere
    # Keras' own choice for the steps: XLA on a single GPU, not on CPU). See tfxmed.training.xla.
    jit_compile: bool | str = field("auto", choices=JIT_COMPILE)


@dataclasses.dataclass
class Experiment:
    """A whole experiment: data, model, training, explanation and runtime settings."""

    name: str = "quickstart"
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    explain: ExplainConfig = dataclasses.field(default_factory=ExplainConfig)
    runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)


def to_dict(config: Any) -> dict:
    """The configuration as plain nested dicts (YAML/JSON-serialisable)."""
    return dataclasses.asdict(config)


def from_dict(values: dict) -> Experiment:
    """An `Experiment` from nested dicts (e.g. `to_dict` output after `apply_overrides`), validated."""
    return check_across(fields.from_dict(Experiment, values))


def load_config(path: str | os.PathLike | None = None, overrides: Sequence[str] = ()) -> Experiment:
    """Builds an `Experiment`: defaults, then the YAML file at `path`, then `overrides` in order; validated."""
    values = to_dict(Experiment())
    if path is not None:
        with open_file(path) as stream:  # a run's config may live on gs:// (tfxmed.storage)
            loaded = yaml.safe_load(stream) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level, got {type(loaded).__name__}")
        try:
            fields.from_dict(Experiment, loaded)  # name the file with a bad key or value before merging
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from None
        values = fields.deep_merge(values, loaded)
    values = apply_overrides(values, overrides)
    return from_dict(values)


def save_config(config: Experiment, path: str | os.PathLike) -> None:
    """Writes the resolved configuration as YAML, atomically."""
    write_yaml_atomic(to_dict(config), path)
