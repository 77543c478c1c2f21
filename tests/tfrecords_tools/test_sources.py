import csv
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.helpers import REPO
from tfrecords_tools import items, sources
from tfxmed.storage import load_manifest


def _drain(ticks):
    return sum(ticks)


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


def test_folder_tree_with_a_corrupt_file(tmp_path, rng):
    root = tmp_path / "tree"
    for name, count in (("normal", 10), ("pneumonia", 10)):
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, (20, 20), dtype=np.uint8)).save(root / name / f"{i}.png")
    (root / "normal" / "broken.png").write_bytes(b"\x89PNG not really")
    _drain(sources.convert_folder(str(root), str(tmp_path / "out")))
    manifest = load_manifest(str(tmp_path / "out"))
    assert manifest["class_names"] == ["normal", "pneumonia"]
    counts = {s: v["count"] for s, v in manifest["splits"].items()}
    assert counts == {"train": 14, "val": 4, "test": 2}  # 70/20/10 per class
    with open(tmp_path / "out" / "skipped.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert [r["item"] for r in rows] == [os.path.join("normal", "broken.png")]
    assert manifest["skipped"] == 1
    # File and folder names may carry patient names: the records hold only a salted hash of the path.
    shards = [os.path.join(tmp_path, "out", s["file"]) for v in manifest["splits"].values() for s in v["shards"]]
    blob = b"".join(open(path, "rb").read() for path in shards)
    assert os.path.join("pneumonia", "3.png").encode() not in blob and b".png" not in blob
    with pytest.raises(ValueError, match="broken.png: unreadable image"):
        _drain(sources.convert_folder(str(root), str(tmp_path / "strict"), strict=True))


def test_stratified_split_is_deterministic_and_stratified():
    labels = [0] * 50 + [1] * 10
    first, second = items.stratified_split(labels, seed=1), items.stratified_split(labels, seed=1)
    assert first == second
    assert sum(s == "train" for s, y in zip(first, labels) if y == 1) == 7


def test_cli_converts_synthetic_with_progress(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tfrecords_tools.convert", "synthetic", "--image-size", "32", "--train", "20",
         "--val", "6", "--test", "6", "--out", str(tmp_path / "syn")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "TFXMED_ID_SALT": ""},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "32/32" in result.stderr  # the progress bar reached the total
    manifest = load_manifest(str(tmp_path / "syn"))
    assert manifest["splits"]["train"]["with_mask"] == 20 and manifest["synthetic_spec"]["image_size"] == 32
    # The default secret is per user, outside the dataset: copying the folder does not ship it.
    assert oct(os.stat(tmp_path / "config" / "tfxmed" / "id_salt").st_mode & 0o777) == "0o600"
    assert not any(name.endswith("salt") for name in os.listdir(tmp_path / "syn"))
