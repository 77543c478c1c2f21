import glob
import os
import re

import pytest
import yaml

from tests.helpers import REPO, TINY_CONFIG
from tfxmed.config import (
    ConfigError,
    Experiment,
    ModelConfig,
    SmallCnnConfig,
    apply_overrides,
    from_dict,
    load_config,
    save_config,
    to_dict,
)


def test_defaults_then_file_then_overrides():
    config = load_config(TINY_CONFIG, ["train.epochs=7", "train.learning_rate=1e-4", "model.small_cnn.blocks=[2, 2]"])
    assert config.name == "tiny"  # from the file
    assert config.data.image_size == 32  # from the file
    assert config.train.epochs == 7  # override wins
    assert config.train.learning_rate == pytest.approx(1e-4)  # YAML's "1e-4" string coerced to float
    assert config.model.small_cnn.blocks == [2, 2]
    assert config.train.label_smoothing == pytest.approx(0.1)  # default kept
    assert config.runtime.seed == 42


def test_unknown_key_is_rejected_by_name():
    with pytest.raises(ConfigError, match=r"unknown config key 'train\.epoch'.*epochs"):
        load_config(None, ["train.epoch=3"])


def test_unknown_key_in_file_names_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  nmae: small_cnn\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown config key 'model\.nmae'"):
        load_config(path)


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.epochs=three", r"train\.epochs: expected an integer"),
        ("data.augment=maybe", r"data\.augment: expected true or false"),
        ("model.small_cnn.blocks=[1, x]", r"model\.small_cnn\.blocks\[1\]: expected an integer"),
        ("data=3", r"data: expected a mapping"),
    ],
)
def test_ill_typed_values_are_rejected(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_override_needs_equals_sign():
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(None, ["train.epochs"])


def test_saved_config_round_trips(tmp_path):
    config = load_config(TINY_CONFIG, ["train.epochs=5"])
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["train"]["epochs"] == 5
    assert to_dict(Experiment())["runtime"]["seed"] == 42


# Issue 18 §5 / issue 20: each of these was accepted at load and failed late (or never) before.
@pytest.mark.parametrize(
    "override, message",
    [
        ("train.consistency.distance=foo",
         r"train\.consistency\.distance: 'foo' is not allowed; choose one of l1, l2, cosine$"),
        ("model.name=foo",
         r"model\.name: 'foo' is not allowed; choose one of resnet50_attention, small_cnn, densenet121, "
         r"efficientnetb0, vgg16, vit, fusion, resnet3d, cnn_rnn$"),
        ("data.batch_size=0", r"data\.batch_size: must be >= 1, got 0$"),
        ("train.epochs=-1", r"train\.epochs: must be >= 1, got -1$"),
        ("train.learning_rate=-1", r"train\.learning_rate: must be > 0, got -1\.0$"),
        ("explain.method=foo", r"explain\.method: 'foo' is not allowed; choose one of gradcam, .*, fusion, auto$"),
    ],
)
def test_the_late_failures_of_issue_18_fail_at_load(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


@pytest.mark.parametrize(
    "override, allowed",
    [
        ("explain.binarize=foo", "fraction_of_max, top_fraction, otsu"),
        ("data.augment_backend=foo", "tf, albumentations"),
        ("data.source=foo", "synthetic, medmnist, tfrecords, synthetic_volumes"),
        ("runtime.strategy=foo", "cpu, gpu, mirrored, multiworker, tpu"),
        ("data.channels=2", "0, 1, 3"),
    ],
)
def test_a_value_outside_its_choices_names_key_value_and_choices(override, allowed):
    key, value = override.split("=")
    with pytest.raises(ConfigError) as error:
        load_config(None, [override])
    quoted = repr(yaml.safe_load(value))
    assert str(error.value) == f"{key}: {quoted} is not allowed; choose one of {allowed}"


@pytest.mark.parametrize(
    "override, allowed",
    [
        ("train.label_smoothing=1", "in [0, 1)"),
        ("model.dropout=1", "in [0, 1)"),
        ("data.image_size=4", ">= 8"),
        ("data.synthetic.image_size=16", ">= 32"),
        ("data.synthetic.val_examples=0", ">= 1"),
        ("data.synthetic.positive_fraction=1.5", "in [0, 1]"),
        ("data.crop_fraction=1", "in [0, 1)"),
        ("data.rotation_degrees=-5", "in [0, 180]"),
        ("data.shuffle_buffer=0", ">= 1"),
        ("train.consistency.alpha=-0.1", ">= 0"),
        ("train.consistency.ig_steps=0", ">= 1"),
        ("train.consistency.ig_fraction=0", "in (0, 1]"),
        ("train.consistency.ig_fraction=1.5", "in (0, 1]"),
        ("train.consistency.every=0", ">= 1"),
        ("train.warmup_epochs=-1", ">= 0"),
        ("train.beta_2=1", "in [0, 1)"),
        ("train.ema_momentum=1", "in [0, 1)"),
        ("explain.binarize_value=0", "in (0, 1]"),
        ("explain.num_overlays=-1", ">= 0"),
        ("runtime.cpu_devices=0", ">= 1"),
        ("runtime.seed=-1", "in [0, 4294967295]"),
        ("model.small_cnn.width=0", ">= 1"),
        ("model.small_cnn.kernel_size=0", ">= 1"),
        ("model.resnet50_attention.width=0", ">= 1"),
        ("train.learning_rate=.nan", "> 0"),
    ],
)
def test_a_value_outside_its_range_names_key_value_and_range(override, allowed):
    key, value = override.split("=")
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)}: must be {re.escape(allowed)}, got "):
        load_config(None, [override])


def test_allowed_edge_values_load():
    config = load_config(None, ["explain.method=auto", "data.cv_folds=5", "data.cv_fold=4", "train.label_smoothing=0",
                                "train.consistency.ig_fraction=1", "model.weights=imagenet", "data.channels=3",
                                "data.source=tfrecords", "data.tfrecord_dir=data/x", "runtime.strategy=tpu"])
    assert config.explain.method == "auto" and config.data.cv_fold == 4
    assert load_config(None, ["model.name=densenet121", "model.weights=imagenet", "data.image_size=32"]).model.weights


def test_configs_built_with_from_dict_are_validated_too():
    """The tuner and the ablation build trial configs with `from_dict`, not `load_config`."""
    with pytest.raises(ConfigError, match=r"train\.epochs: must be >= 1, got 0"):
        from_dict(apply_overrides(to_dict(Experiment()), ["train.epochs=0"]))
    with pytest.raises(ConfigError, match=r"data\.cv_fold: must be in \[0, 3\)"):
        from_dict(apply_overrides(to_dict(Experiment()), ["data.cv_folds=3"]))
    assert from_dict(to_dict(Experiment())) == Experiment()  # the defaults are allowed values


def test_a_bad_value_in_a_file_names_the_file_and_the_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  consistency:\n    distance: manhattan\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: train\.consistency\.distance: 'manhattan' is not allowed"):
        load_config(path)


def test_an_override_that_is_not_yaml_is_a_config_error():
    with pytest.raises(ConfigError, match=r"override 'model\.small_cnn\.blocks=\[1,': the value is not valid YAML"):
        load_config(None, ["model.small_cnn.blocks=[1,"])


def test_model_settings_live_in_one_section_per_model():
    config = load_config(TINY_CONFIG, ["model.small_cnn.kernel_size=5", "model.resnet50_attention.stem_pool=false"])
    assert config.model.small_cnn == SmallCnnConfig(blocks=[1, 1, 1], width=8, kernel_size=5)
    assert config.model.resnet50_attention.stem_pool is False
    assert ModelConfig().resnet50_attention.blocks == [3, 4, 6, 3]
    with pytest.raises(ConfigError, match=r"unknown config key 'model\.width'.*did you mean "
                                          r"model\.resnet50_attention\.width or model\.small_cnn\.width or "
                                          r"model\.resnet3d\.width or model\.cnn_rnn\.width\?"):
        load_config(None, ["model.width=32"])
    with pytest.raises(ConfigError, match=r"unknown config key 'model\.kernel_size'.*did you mean model\.small_cnn"):
        load_config(None, ["model.kernel_size=5"])


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REPO, "configs", "*.yaml"))), ids=os.path.basename)
def test_every_shipped_config_loads(path):
    with open(path, encoding="utf-8") as stream:
        is_search = "space" in (yaml.safe_load(stream) or {})  # tune_*.yaml, auto_search.yaml
    if is_search:
        from tfxmed.experiments.tuning import load_search

        config = load_search(path).base  # the search file's base, and a probe trial of its space
    else:
        config = load_config(path)
    assert isinstance(config, Experiment)


# Property-based (issue 20): any value for any declared key is either refused with a ConfigError that
# names the key, or loaded and within what the key declares. Nothing else escapes.
import dataclasses as _dataclasses  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tfxmed import config as _config  # noqa: E402


def _resolved_field_types():
    import typing

    def walk(cls, prefix=""):
        hints = typing.get_type_hints(cls)
        for field in _dataclasses.fields(cls):
            key = f"{prefix}{field.name}"
            if _dataclasses.is_dataclass(hints[field.name]):
                yield from walk(hints[field.name], f"{key}.")
            elif field.metadata.get("choices") or field.metadata.get("within"):
                yield key, field

    return dict(walk(_config.Experiment))


DECLARED = _resolved_field_types()
VALUES = st.one_of(
    st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.text(max_size=12), st.sampled_from(["cpu", "auto", "gradcam", "l1", "tf", "synthetic", "1e400", "[1, 2]"]),
    st.lists(st.integers(-3, 8), max_size=5),
)


@settings(max_examples=150, deadline=None)
@given(key=st.sampled_from(sorted(DECLARED)), value=VALUES)
def test_any_value_is_refused_by_name_or_loaded_within_its_declaration(key, value):
    import json
    import math

    try:
        loaded = load_config(TINY_CONFIG, [f"{key}={json.dumps(value)}"])
    except ConfigError as error:
        assert key.split(".")[-1] in str(error)
        return
    got = loaded
    for part in key.split("."):
        got = getattr(got, part)
    field = DECLARED[key]
    if field.metadata.get("choices"):
        assert got in field.metadata["choices"]
    interval = field.metadata.get("within")
    if interval is not None:
        for item in got if isinstance(got, list) else [got]:
            assert not (isinstance(item, float) and math.isnan(item)) and item in interval
