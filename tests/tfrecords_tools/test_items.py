"""The writing loop every table-based converter shares (`tfrecords_tools.items`): splits by label and by
patient, images read as 8 bits, and one image written at most once."""

import csv

import numpy as np
import pytest
from PIL import Image

from tfrecords_tools import items
from tfrecords_tools.items import Item, patient_split, read_image, write_items
from tfxmed.errors import Refusal
from tfxmed.storage import load_manifest


def test_stratified_split_is_deterministic_and_stratified():
    labels = [0] * 50 + [1] * 10
    first, second = items.stratified_split(labels, seed=1), items.stratified_split(labels, seed=1)
    assert first == second
    assert sum(s == "train" for s, y in zip(first, labels) if y == 1) == 7


def test_patient_split_is_deterministic_and_stratified():
    patients = [f"p{i // 2}" for i in range(200)]
    labels = [int(i // 2 % 4 == 0) for i in range(200)]
    first = patient_split(patients, labels, seed=3)
    assert first == patient_split(patients, labels, seed=3)
    positive_patients_in_test = {p for p, s, y in zip(patients, first[0], labels) if s == "test" and y}
    assert len(positive_patients_in_test) == 25 - round(0.9 * 25)  # the last 10% of the 25 positive patients


def test_a_patients_images_share_one_split_and_one_fold(rng):
    patients = [f"p{k}" for k in rng.integers(0, 40, 300)]
    labels = rng.integers(0, 3, 300).tolist()
    splits, folds = patient_split(patients, labels, folds=4, seed=5)
    for patient in set(patients):
        assert len({s for p, s in zip(patients, splits) if p == patient}) == 1
        assert len({f for p, f in zip(patients, folds) if p == patient}) == 1
    assert set(folds) == {0, 1, 2, 3}


def test_read_image_scales_deep_images_to_8_bits_instead_of_clipping(tmp_path):
    deep = np.array([[0, 1000, 2000, 4000]] * 4, np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    expected = np.round(255.0 * deep / 4000).astype(np.uint8)  # [0, 64, 128, 255]
    np.testing.assert_array_equal(read_image(str(tmp_path / "deep.png"), 1), expected)
    np.testing.assert_array_equal(read_image(str(tmp_path / "deep.png"), 3), np.repeat(expected[..., None], 3, -1))
    Image.fromarray(np.full((4, 4), 7.5, np.float32)).save(tmp_path / "flat.tiff")
    assert not read_image(str(tmp_path / "flat.tiff"), 1).any()  # constant: zeros, not a division by zero
    Image.fromarray(np.zeros((1, 9), np.uint8)).save(tmp_path / "line.png")
    with pytest.raises(ValueError, match="9×1 px: too small to be an image"):
        read_image(str(tmp_path / "line.png"), 1)


def test_an_image_listed_twice_is_written_once_and_reported(tmp_path, rng):
    paths = []
    for i in range(6):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(paths[-1])
    (tmp_path / "copy.png").write_bytes(open(paths[0], "rb").read())
    listed = [Item(f"row {i}", path, i % 2, "train" if i < 4 else "val") for i, path in enumerate(paths)]
    listed += [Item("row 6", paths[1], 1, "val"), Item("row 7", str(tmp_path / "copy.png"), 0, "val")]
    sum(write_items(listed, str(tmp_path / "out"), "twice", ["a", "b"], salt="s"))
    manifest = load_manifest(tmp_path / "out")
    assert {split: info["count"] for split, info in manifest["splits"].items()} == {"train": 4, "val": 2}
    with open(tmp_path / "out" / "skipped.csv", encoding="utf-8") as stream:
        reasons = {row["item"]: row["reason"] for row in csv.DictReader(stream)}
    assert reasons["row 6"].startswith("duplicate of row 1 (the same file)")
    assert reasons["row 7"].startswith("duplicate of row 0 (identical image bytes)")
    with pytest.raises(Refusal, match=r"^row 6: duplicate of row 1"):  # strict: the first refusal stops it
        sum(write_items(listed, str(tmp_path / "strict"), "twice", ["a", "b"], salt="s", strict=True))
