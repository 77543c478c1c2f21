"""MedMNIST `.npz` files: official splits kept, pixels converted by one stated rule, bad files refused
before anything is written."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tfrecords_tools import sources
from tfrecords_tools.medmnist import convert_medmnist
from tfxmed.data import features
from tfxmed.errors import Refusal
from tfxmed.storage import load_manifest


def _drain(ticks):
    return sum(ticks)


def _images_of(out, split):
    manifest = load_manifest(str(out))
    files = [os.path.join(out, shard["file"]) for shard in manifest["splits"][split]["shards"]]
    return [features.parse(raw, manifest["num_classes"], manifest["channels"])
            for raw in tf.data.TFRecordDataset(files)]


def _arrays(images, labels=None, counts=(4, 2, 2)):
    """MedMNIST arrays from one image array [N, ...] split into train/val/test by `counts`."""
    labels = np.arange(len(images)) % 2 if labels is None else labels
    bounds = np.cumsum(counts)[:-1]
    arrays = {}
    for split, part, part_labels in zip(("train", "val", "test"), np.split(images, bounds), np.split(labels, bounds)):
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = part, part_labels.reshape(-1, 1)
    return arrays


def _fake_medmnist(path, rng, label_columns=1, classes=2, channels=None):
    arrays = {}
    for split, count in (("train", 12), ("val", 4), ("test", 6)):
        shape = (count, 28, 28) if channels is None else (count, 28, 28, channels)
        arrays[f"{split}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        if label_columns == 1:
            arrays[f"{split}_labels"] = (np.arange(count) % classes).reshape(-1, 1)
        else:
            arrays[f"{split}_labels"] = rng.integers(0, 2, (count, label_columns))
    np.savez(path, **arrays)
    return arrays


def test_medmnist_binary_keeps_official_splits(tmp_path, rng):
    path = tmp_path / "pneumoniamnist.npz"
    arrays = _fake_medmnist(path, rng)
    assert _drain(sources.convert_medmnist(str(path), str(tmp_path / "out"))) == 22
    manifest = load_manifest(str(tmp_path / "out"))
    assert manifest["class_names"] == ["normal", "pneumonia"] and not manifest["multi_label"]
    assert {s: v["count"] for s, v in manifest["splits"].items()} == {"train": 12, "val": 4, "test": 6}
    assert manifest["splits"]["test"]["class_counts"] == {"normal": 3, "pneumonia": 3}
    assert manifest["pixel_mean"][0] == pytest.approx(arrays["train_images"].mean() / 255, abs=1e-9)


def test_medmnist_multi_label_and_rgb(tmp_path, rng):
    path = tmp_path / "chestmnist.npz"
    arrays = _fake_medmnist(path, rng, label_columns=14)
    _drain(sources.convert_medmnist(str(path), str(tmp_path / "ml")))
    manifest = load_manifest(str(tmp_path / "ml"))
    assert manifest["multi_label"] and manifest["class_names"][0] == "atelectasis"
    assert manifest["splits"]["train"]["class_counts"]["hernia"] == int(arrays["train_labels"][:, 13].sum())
    path = tmp_path / "bloodmnist.npz"
    _fake_medmnist(path, rng, classes=8, channels=3)
    _drain(sources.convert_medmnist(str(path), str(tmp_path / "rgb")))
    manifest = load_manifest(str(tmp_path / "rgb"))
    assert manifest["channels"] == 3 and len(manifest["pixel_mean"]) == 3 and manifest["num_classes"] == 8


def test_medmnist_missing_keys_named(tmp_path):
    np.savez(tmp_path / "bad.npz", train_images=np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="not a MedMNIST file.*val_images"):
        _drain(sources.convert_medmnist(str(tmp_path / "bad.npz"), str(tmp_path / "out")))


def test_float_images_in_0_1_are_scaled_not_truncated_to_black(tmp_path, rng):
    images = rng.random((8, 6, 6)).astype(np.float32)
    np.savez(tmp_path / "floats.npz", **_arrays(images))
    _drain(convert_medmnist(str(tmp_path / "floats.npz"), str(tmp_path / "out"), salt="s"))
    written = np.stack([r["image"].numpy()[..., 0] for r in _images_of(tmp_path / "out", "train")])
    np.testing.assert_array_equal(written, np.round(images[:4].astype(np.float64) * 255).astype(np.uint8))
    assert written.max() > 200  # the old cast made every image black
    assert "in [0, 1] multiplied by 255" in load_manifest(str(tmp_path / "out"))["pixel_conversion"]


def test_uint16_images_are_mapped_linearly_not_wrapped(tmp_path):
    images = (np.arange(8 * 4 * 4).reshape(8, 4, 4) * 300 + 1000).astype(np.uint16)  # 1000 … 39100
    np.savez(tmp_path / "deep.npz", **_arrays(images))
    _drain(convert_medmnist(str(tmp_path / "deep.npz"), str(tmp_path / "out"), salt="s"))
    written = np.stack([r["image"].numpy()[..., 0] for r in _images_of(tmp_path / "out", "train")])
    expected = np.round((images[:4].astype(np.float64) - 1000) * 255 / (39100 - 1000)).astype(np.uint8)
    np.testing.assert_array_equal(written, expected)
    assert np.all(np.diff(written.reshape(-1).astype(int)) >= 0)  # order kept: nothing wrapped around 256
    manifest = load_manifest(str(tmp_path / "out"))
    assert manifest["pixel_conversion"].startswith("uint16 in [1000, 39100] mapped linearly onto [0, 255]")


@pytest.mark.parametrize("change, message", [
    (lambda a: a["train_images"].__setitem__((1, 2, 3), np.nan), r"train_images holds NaN or infinite pixels in 1 "
                                                                 r"image\(s\) \(the first is image 1\)"),
    (lambda a: a["val_images"].__setitem__((0, 0, 0), np.inf), "val_images holds NaN or infinite pixels"),
    (lambda a: a.update(train_labels=a["train_labels"][:3]), "train_images holds 4 images but train_labels 3 labels"),
    (lambda a: a.update(test_images=a["test_images"][:1]), "test_images holds 1 images but test_labels 2 labels"),
    (lambda a: a.update(train_images=a["train_images"][:, :, 0]), r"train_images has shape \(4, 6\); expected "
                                                                  r"\[N, H, W\] or \[N, H, W, C\]"),
    (lambda a: a.update(train_images=a["train_images"][..., None].repeat(2, -1)), "with C 1 or 3"),
    (lambda a: a.update(test_labels=np.array([[0], [2]])), r"test_labels holds label 2 \(image 1\); the classes run "
                                                           r"0–1"),
    (lambda a: a.update(train_labels=np.array([[0], [2], [0], [2]])), "val_labels holds label 1 .*a class "
                                                                      "train_labels never has"),
    (lambda a: a.update(val_labels=np.array([[-1], [0]])), "val_labels holds the negative label -1"),
    (lambda a: a.update(val_labels=np.array([[0.5], [0]])), "val_labels holds NaN, infinite or fractional labels"),
    (lambda a: a.update(val_labels=np.array([[0, 1], [1, 0]])), r"label arrays have .* columns; expected the same"),
    (lambda a: a.update(train_images=a["train_images"] > 0.5), "train_images has dtype bool"),
    (lambda a: a.update(train_images=a["train_images"][:0], train_labels=a["train_labels"][:0]),
     "train_images holds no images"),
])
def test_a_bad_file_is_refused_before_anything_is_written(tmp_path, rng, change, message):
    arrays = _arrays(rng.random((8, 6, 6)).astype(np.float32))
    change(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(Refusal, match=message):
        _drain(convert_medmnist(str(tmp_path / "bad.npz"), str(tmp_path / "out"), salt="s"))
    assert not os.path.exists(tmp_path / "out")


def test_labels_beyond_a_known_datasets_classes_are_refused(tmp_path, rng):
    arrays = _arrays(rng.integers(0, 256, (8, 6, 6), dtype=np.uint8), np.array([0, 1, 2, 9, 0, 1, 2, 1]))
    np.savez(tmp_path / "pathmnist.npz", **arrays)
    with pytest.raises(Refusal, match=r"pathmnist.npz: train_labels holds label 9 \(image 3\); pathmnist has 9 "
                                      r"classes \(0–8\)"):
        _drain(convert_medmnist(str(tmp_path / "pathmnist.npz"), str(tmp_path / "out"), salt="s"))
    arrays["train_labels"][3] = 8
    np.savez(tmp_path / "pathmnist.npz", **arrays)
    _drain(convert_medmnist(str(tmp_path / "pathmnist.npz"), str(tmp_path / "out"), salt="s"))
    assert load_manifest(str(tmp_path / "out"))["num_classes"] == 9  # the dataset's classes, not the file's max


@pytest.mark.parametrize("content", [b"", b"not a zip", b"PK\x03\x04 truncated"])
def test_an_unreadable_file_is_refused_by_name(tmp_path, content):
    (tmp_path / "x.npz").write_bytes(content)
    with pytest.raises(Refusal, match=r"x.npz: not a readable .npz archive"):
        _drain(convert_medmnist(str(tmp_path / "x.npz"), str(tmp_path / "out"), salt="s"))
    assert sources.medmnist_size(str(tmp_path / "x.npz")) == 0
