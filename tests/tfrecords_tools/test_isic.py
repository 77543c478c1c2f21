import csv
import glob

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfrecords_tools.isic import convert_isic
from tfxmed.data import features
from tfxmed.storage import load_manifest


def _image(path, rng):
    Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(path)


def test_isic_2018_one_hot_with_segmentation_masks(tmp_path, rng):
    images, masks = tmp_path / "ISIC2018_Task3_Training_Input", tmp_path / "ISIC2018_Task1_Training_GroundTruth"
    images.mkdir(), masks.mkdir()
    classes = ["MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"]
    rows = []
    for i in range(21):
        stem = f"ISIC_{i:07d}"
        _image(images / f"{stem}.jpg", rng)
        rows.append([stem, *[f"{float(c == i % 7):.1f}" for c in range(7)]])
        if i < 3:
            mask = np.zeros((24, 24), np.uint8)
            mask[4:10, 6:12] = 255
            Image.fromarray(mask).save(masks / f"{stem}_segmentation.png")
    rows.append(["ISIC_0000099", "1.0", *["0.0"] * 6])  # missing image
    rows.append(["ISIC_0000001", *["0.0"] * 7])  # no class marked
    csv_path = tmp_path / "ISIC2018_Task3_Training_GroundTruth.csv"
    with open(csv_path, "w", newline="") as stream:
        csv.writer(stream).writerows([["image", *classes], *rows])
    out = tmp_path / "out"
    sum(convert_isic(str(csv_path), str(images), str(out), masks_dir=str(masks), salt="s"))
    manifest = load_manifest(str(out))
    assert manifest["class_names"] == classes and manifest["channels"] == 3 and manifest["skipped"] == 2
    assert sum(v["count"] for v in manifest["splits"].values()) == 21
    total = {c: sum(v["class_counts"][c] for v in manifest["splits"].values()) for c in classes}
    assert total == {c: 3 for c in classes}
    assert sum(v["with_mask"] for v in manifest["splits"].values()) == 3
    records = [features.parse(raw, 7, 3)
               for path in glob.glob(str(out / "*.tfrecord")) for raw in tf.data.TFRecordDataset(path)]
    masked = [r for r in records if r["has_mask"]]
    assert len(masked) == 3 and int(tf.reduce_sum(tf.cast(masked[0]["mask"] > 0, tf.int32))) == 36


def test_isic_2020_target_column_splits_by_patient(tmp_path, rng):
    images = tmp_path / "train"
    images.mkdir()
    rows = []
    for i in range(30):
        stem = f"ISIC_{i:07d}"
        _image(images / f"{stem}.jpg", rng)
        rows.append([stem, f"IP_{i // 3:07d}", "female", "45.0", "torso", "unknown", "benign", str(int(i % 5 == 0))])
    rows.append(["ISIC_0000002", "IP_0000000", "female", "45.0", "torso", "unknown", "benign", "yes"])  # bad target
    with open(tmp_path / "train.csv", "w", newline="") as stream:
        csv.writer(stream).writerows([["image_name", "patient_id", "sex", "age_approx", "anatom_site_general_challenge",
                                       "diagnosis", "benign_malignant", "target"], *rows])
    out = tmp_path / "out"
    sum(convert_isic(str(tmp_path / "train.csv"), str(images), str(out), salt="s"))
    manifest = load_manifest(str(out))
    assert manifest["class_names"] == ["benign", "malignant"] and manifest["patient_level"] and manifest["skipped"] == 1
    split_of = {}
    for path in glob.glob(str(out / "*.tfrecord")):
        for raw in tf.data.TFRecordDataset(path):
            patient = features.parse(raw, 2, 3)["patient"].numpy()
            split_of.setdefault(patient, set()).add(path.split("/")[-1].split("-")[0])
    assert len(split_of) == 10 and all(len(s) == 1 for s in split_of.values())
    blob = b"".join(open(p, "rb").read() for p in glob.glob(str(out / "*")))
    assert b"IP_000" not in blob and b"female" not in blob


def test_isic_csv_without_image_column_is_named(tmp_path):
    (tmp_path / "gt.csv").write_text("name,MEL\nx,1\n")
    with pytest.raises(ValueError, match="'image'"):
        sum(convert_isic(str(tmp_path / "gt.csv"), str(tmp_path), str(tmp_path / "out")))


def test_isic_images_of_one_lesion_stay_in_one_split(tmp_path, rng):
    images = tmp_path / "ISIC_2019_Training_Input"
    images.mkdir()
    rows, metadata = [], []
    for i in range(40):
        stem = f"ISIC_{i:07d}"
        _image(images / f"{stem}.jpg", rng)
        rows.append([stem, f"{float(i % 2 == 0):.1f}", f"{float(i % 2 == 1):.1f}"])
        metadata.append([stem, f"HAM_{i // 4:07d}"])  # four images per lesion
    with open(tmp_path / "gt.csv", "w", newline="") as stream:
        csv.writer(stream).writerows([["image", "MEL", "NV"], *rows])
    with open(tmp_path / "meta.csv", "w", newline="") as stream:
        csv.writer(stream).writerows([["image", "lesion_id"], *metadata])
    out = tmp_path / "out"
    sum(convert_isic(str(tmp_path / "gt.csv"), str(images), str(out), metadata_csv=str(tmp_path / "meta.csv"),
                     salt="s"))
    assert load_manifest(str(out))["lesion_level"]
    split_of = {}
    for path in glob.glob(str(out / "*.tfrecord")):
        for raw in tf.data.TFRecordDataset(path):
            source = features.parse(raw, 2, 3)["source"].numpy()
            split_of[source] = path.split("/")[-1].split("-")[0]
    from tfrecords_tools.writer import hash_patient_id

    for lesion in range(10):
        splits = {split_of[hash_patient_id(f"ISIC_{i:07d}", "s").encode()] for i in range(4 * lesion, 4 * lesion + 4)}
        assert len(splits) == 1
