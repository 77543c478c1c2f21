"""Where a config's TFRecords live (`tfrecords_tools.prepare`): folders named by what is converted into them,
converted once, and clear errors for a missing source."""

import os

import numpy as np
import pytest

from tests.helpers import REPO, TINY_CONFIG
from tfrecords_tools import prepare
from tfrecords_tools.prepare import dataset_dir, prepare_data
from tfxmed.config import load_config
from tfxmed.storage import load_manifest

RECIPE = os.path.join(REPO, "configs", "medmnist.yaml")
SMALL = ["data.synthetic.train_examples=8", "data.synthetic.val_examples=4", "data.synthetic.test_examples=4"]


def test_medmnist_source_names_a_missing_file(tmp_path):
    config = load_config(RECIPE, [f"data.npz={tmp_path / 'absent.npz'}"])
    with pytest.raises(FileNotFoundError, match="absent.npz"):
        prepare_data(config)


def test_folders_are_named_by_what_is_converted_into_them(tmp_path):
    base = dataset_dir(load_config(TINY_CONFIG, SMALL))
    assert base.startswith(os.path.join("data", "synthetic-"))
    assert dataset_dir(load_config(TINY_CONFIG, SMALL)) == base  # the same spec: the same folder
    assert dataset_dir(load_config(TINY_CONFIG, [*SMALL, "data.synthetic.difficulty=0.9"])) != base
    assert dataset_dir(load_config(TINY_CONFIG, [*SMALL, "runtime.seed=7"])) != base  # the seed draws the images
    assert dataset_dir(load_config(TINY_CONFIG, [*SMALL, "data.image_size=64"])) == base  # not part of the records
    assert dataset_dir(load_config(TINY_CONFIG, [f"data.tfrecord_dir={tmp_path}"])) == str(tmp_path)

    npz = tmp_path / "pneumoniamnist.npz"
    np.savez(npz, train_images=np.zeros((2, 28, 28), np.uint8))
    first = dataset_dir(load_config(RECIPE, [f"data.npz={npz}"]))
    np.savez(npz, train_images=np.ones((2, 28, 28), np.uint8))  # a changed file is converted again
    second = dataset_dir(load_config(RECIPE, [f"data.npz={npz}"]))
    assert os.path.basename(first).startswith("pneumoniamnist-") and first != second


def test_synthetic_source_is_converted_once_then_reused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TFXMED_ID_SALT", "test-salt")  # not the per-user secret file
    config = load_config(TINY_CONFIG, SMALL)
    directory = prepare_data(config, progress=False)
    assert directory == dataset_dir(config) and not os.path.isabs(directory)
    manifest = load_manifest(directory)
    assert {split: info["count"] for split, info in manifest["splits"].items()} == {"train": 8, "val": 4, "test": 4}

    def converted_again(*args, **kwargs):
        raise AssertionError("the finished folder was converted again")

    monkeypatch.setattr(prepare.sources, "convert_synthetic", converted_again)
    assert prepare_data(config, progress=False) == directory


def test_tfrecords_source_without_a_manifest_says_what_to_do(tmp_path):
    config = load_config(TINY_CONFIG, ["data.source=tfrecords", f"data.tfrecord_dir={tmp_path}"])
    with pytest.raises(FileNotFoundError, match=rf"data.tfrecord_dir='{tmp_path}' has no manifest.json; convert"):
        prepare_data(config)
    config.data.source = "dicomweb"  # past the config's own check: prepare_data still names the choices
    choices = "synthetic, medmnist, tfrecords, synthetic_volumes"
    with pytest.raises(ValueError, match=f"data.source must be one of {choices}; got 'dicomweb'"):
        prepare_data(config)


def test_a_named_folder_holding_another_conversion_is_refused_not_silently_reused(tmp_path, monkeypatch, rng):
    """A data.tfrecord_dir shared by two configs used to hand the second the first one's records."""
    from tests.helpers import learnable_npz
    from tfxmed.errors import OutputExistsError

    monkeypatch.setenv("TFXMED_ID_SALT", "test-salt")
    folder = tmp_path / "records"
    synthetic = load_config(TINY_CONFIG, [*SMALL, f"data.tfrecord_dir={folder}"])
    assert prepare_data(synthetic, progress=False) == str(folder)
    assert prepare_data(synthetic, progress=False) == str(folder)  # the same conversion: reused
    npz = tmp_path / "labels.npz"
    learnable_npz(npz, rng, "binary")
    medmnist = load_config(RECIPE, [f"data.npz={npz}", f"data.tfrecord_dir={folder}"])
    with pytest.raises(OutputExistsError, match=rf"data.tfrecord_dir='{folder}' already holds another conversion"):
        prepare_data(medmnist, progress=False)
    # Pinning a folder pins the data: another seed (which draws other synthetic images) reuses it.
    assert prepare_data(load_config(TINY_CONFIG, [*SMALL, "runtime.seed=7", f"data.tfrecord_dir={folder}"]),
                        progress=False) == str(folder)
    other_file = tmp_path / "other.npz"
    learnable_npz(other_file, rng, "binary")  # other images: another file's records are not these
    medmnist_folder = tmp_path / "medmnist_records"
    prepare_data(load_config(RECIPE, [f"data.npz={npz}", f"data.tfrecord_dir={medmnist_folder}"]), progress=False)
    with pytest.raises(OutputExistsError, match="another conversion"):
        prepare_data(load_config(RECIPE, [f"data.npz={other_file}", f"data.tfrecord_dir={medmnist_folder}"]),
                     progress=False)
    assert load_manifest(str(folder))["dataset"] == "synthetic"  # nothing was overwritten
    # A folder converted before the marker existed is checked by the manifest's dataset name.
    os.remove(folder / prepare.SOURCE_MARKER)
    assert prepare_data(synthetic, progress=False) == str(folder)
    with pytest.raises(OutputExistsError, match="'dataset': 'synthetic'"):
        prepare_data(medmnist, progress=False)
