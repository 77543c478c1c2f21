import csv
import glob
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfrecords_tools.nih import FINDINGS, convert_nih
from tfxmed.data import features
from tfxmed.storage import load_manifest


def _fake_nih(tmp_path, rng):
    """Data_Entry_2017.csv, train_val_list.txt, test_list.txt, BBox_List_2017.csv and images_00K/images/*.png."""
    root = tmp_path / "chestxray14"
    entries, train_val, test = [], [], []
    for i in range(24):
        name, patient = f"{i:08d}_000.png", f"{100 + i // 2}"  # two images per patient
        folder = root / f"images_00{1 + i % 2}" / "images"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8)).save(folder / name)
        findings = ["No Finding", "Effusion", "Mass|Nodule", "Hernia"][i % 4]
        entries.append([name, findings, "0", patient, "58", "M", "PA", "64", "64", "0.143", "0.143"])
        (test if i >= 20 else train_val).append(name)
    entries.append(["00000099_000.png", "Effusion", "0", "999", "40", "F", "PA", "64", "64", "0.1", "0.1"])  # no file
    entries.append(["00000001_000.png", "Dragons", "0", "100", "58", "M", "PA", "64", "64", "0.1", "0.1"])  # unknown
    with open(root / "Data_Entry_2017.csv", "w", newline="") as stream:
        csv.writer(stream).writerows([["Image Index", "Finding Labels", "Follow-up #", "Patient ID", "Patient Age",
                                       "Patient Gender", "View Position", "OriginalImage[Width", "Height]",
                                       "OriginalImagePixelSpacing[x", "y]"], *entries])
    (root / "train_val_list.txt").write_text("\n".join(train_val) + "\n")
    (root / "test_list.txt").write_text("\n".join(test) + "\n")
    with open(root / "BBox_List_2017.csv", "w", newline="") as stream:
        csv.writer(stream).writerows([["Image Index", "Finding Label", "Bbox [x", "y", "w", "h]", "", "", ""],
                                      ["00000001_000.png", "Effusion", "256", "512", "512", "256", "", "", ""]])
    return str(root)


def test_multi_label_official_split_boxes_and_hashed_patients(tmp_path, rng):
    root = _fake_nih(tmp_path, rng)
    out = tmp_path / "out"
    sum(convert_nih(root, str(out), val_fraction=0.25, salt="s", shard_examples=6))
    manifest = load_manifest(str(out))
    assert manifest["class_names"] == list(FINDINGS) and manifest["multi_label"] and manifest["skipped"] == 2
    counts = {s: v["count"] for s, v in manifest["splits"].items()}
    assert counts["test"] == 4 and counts["train"] + counts["val"] == 20 and counts["val"] > 0
    splits = manifest["splits"]
    assert splits["train"]["class_counts"]["Hernia"] + splits["val"]["class_counts"]["Hernia"] == 5
    examples = []
    for path in glob.glob(str(out / "*.tfrecord")):
        split = os.path.basename(path).split("-")[0]
        for raw in tf.data.TFRecordDataset(path):
            examples.append((split, {k: v.numpy() for k, v in features.parse(raw, 14, 1).items()}))
    masked = [e for _, e in examples if e["has_mask"]]
    assert len(masked) == 1
    # Box x=256, y=512, w=512, h=256 in the 1024-px grid → on the 32-px file: rows 16..24, columns 8..24.
    expected = np.zeros((32, 32), np.uint8)
    expected[16:24, 8:24] = 255
    assert np.array_equal(masked[0]["mask"][..., 0], expected)
    mass_nodule = [e for _, e in examples if e["label"][FINDINGS.index("Mass")] == 1]
    assert mass_nodule and all(e["label"][FINDINGS.index("Nodule")] == 1 for e in mass_nodule)
    assert any(e["label"].sum() == 0 for _, e in examples)  # No Finding
    patients = {}
    for split, e in examples:
        patients.setdefault(e["patient"], set()).add(split)
    assert all(len(s) == 1 for s in patients.values())
    blob = b"".join(open(p, "rb").read() for p in glob.glob(str(out / "*")))
    assert b"Patient ID" not in blob and b'"100"' not in blob
    reasons = (out / "skipped.csv").read_text()
    assert "Dragons" in reasons and "missing file" in reasons


def test_missing_entries_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="Data_Entry_2017.csv"):
        sum(convert_nih(str(tmp_path), str(tmp_path / "out")))


def test_cli_converts_nih(tmp_path, rng):
    from tfrecords_tools.convert import main

    assert main(["nih", _fake_nih(tmp_path, rng), "--out", str(tmp_path / "cli"), "--salt", "s"]) == 0
    assert load_manifest(str(tmp_path / "cli"))["with_boxes"] == 1
