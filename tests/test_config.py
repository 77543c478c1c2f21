import pytest
import yaml

from tests.helpers import TINY_CONFIG
from tfxmed.config import ConfigError, Experiment, load_config, save_config, to_dict


def test_defaults_then_file_then_overrides():
    config = load_config(TINY_CONFIG, ["train.epochs=7", "train.learning_rate=1e-4", "model.blocks=[2, 2]"])
    assert config.name == "tiny"  # from the file
    assert config.data.image_size == 32  # from the file
    assert config.train.epochs == 7  # override wins
    assert config.train.learning_rate == pytest.approx(1e-4)  # YAML's "1e-4" string coerced to float
    assert config.model.blocks == [2, 2]
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
        ("model.blocks=[1, x]", r"model\.blocks\[1\]: expected an integer"),
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
