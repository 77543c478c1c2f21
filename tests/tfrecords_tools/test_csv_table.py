import csv
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.helpers import REPO
from tfrecords_tools.csv_table import convert_csv, patient_split
from tfxmed.data import features
from tfxmed.storage import load_manifest


def _records(out):
    manifest = load_manifest(str(out))
    rows = []
    for split, info in manifest["splits"].items():
        for shard in info["shards"]:
            for serialized in tf.data.TFRecordDataset(os.path.join(out, shard["file"])):
                parsed = features.parse(serialized, manifest["num_classes"], 1)
                rows.append({"split": split, "patient": parsed["patient"].numpy().decode(),
                             "fold": int(parsed["fold"].numpy()), "label": parsed["label"].numpy(),
                             "has_mask": bool(parsed["has_mask"].numpy()), "mask": parsed["mask"].numpy()})
    return manifest, rows


def _tree(tmp_path, rng, patients=30, per_patient=3):
    rows = []
    for p in range(patients):
        label = "pneumonia" if p % 3 == 0 else "normal"
        for k in range(per_patient):
            name = f"images/Doe_Jane_{p}_{k}.png"
            (tmp_path / "images").mkdir(exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8)).save(tmp_path / name)
            rows.append({"path": name, "label": label, "patient_id": f"MRN-{p:04d}", "mask": ""})
    return rows


def _write_csv(path, rows, columns=("path", "label", "mask", "patient_id")):
    with open(path, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def test_patients_never_cross_splits_or_folds_and_ids_are_hashed(tmp_path):
    rng = np.random.default_rng(0)
    rows = _tree(tmp_path, rng)
    mask = np.zeros((12, 12), np.uint8)
    mask[2:5, 3:7] = 1
    Image.fromarray(mask).save(tmp_path / "mask0.png")
    rows[0]["mask"] = "mask0.png"
    rows.append({"path": "images/missing.png", "label": "normal", "patient_id": "MRN-9999"})
    rows.append({"path": rows[1]["path"], "label": "", "patient_id": "MRN-9998"})
    (tmp_path / "images" / "broken.png").write_bytes(b"not a png")
    rows.append({"path": "images/broken.png", "label": "normal", "patient_id": "MRN-9997"})
    _write_csv(tmp_path / "data.csv", rows)
    out = tmp_path / "out"
    assert sum(convert_csv(str(tmp_path / "data.csv"), str(out), salt="s", shard_examples=16)) == 91

    manifest, records = _records(out)
    assert manifest["class_names"] == ["normal", "pneumonia"] and manifest["skipped"] == 3
    with open(out / "skipped.csv") as stream:
        reasons = [r["reason"] for r in csv.DictReader(stream)]
    assert any("missing file" in r for r in reasons) and "empty label" in reasons and any("unreadable" in r for r in reasons)
    assert len(records) == 90
    by_patient = {}
    for record in records:
        by_patient.setdefault(record["patient"], set()).add((record["split"], record["fold"]))
    assert len(by_patient) == 30 and all(len(v) == 1 for v in by_patient.values())  # one split, one fold each
    counts = {s: sum(1 for r in records if r["split"] == s) for s in ("train", "val", "test")}
    assert counts == {"train": 63, "val": 18, "test": 9}  # 21/6/3 patients × 3 images
    assert {r["fold"] for r in records} == set(range(5))
    masked = [r for r in records if r["has_mask"]]
    assert len(masked) == 1 and (masked[0]["mask"][..., 0] > 0).sum() == 12
    blob = b"".join(open(os.path.join(out, s["file"]), "rb").read()
                    for v in manifest["splits"].values() for s in v["shards"])
    assert b"MRN-" not in blob and b"Doe_Jane" not in blob and b"Doe_Jane" not in (out / "skipped.csv").read_bytes()


def test_official_split_column_and_multi_label(tmp_path):
    rng = np.random.default_rng(1)
    rows = _tree(tmp_path, rng, patients=4, per_patient=1)
    for row, split, label in zip(rows, ["train", "train", "val", "test"], ["a|b", "a", "b", "a|b"]):
        row.update(split=split, label=label)
    _write_csv(tmp_path / "d.csv", rows, ("path", "label", "patient_id", "split"))
    sum(convert_csv(str(tmp_path / "d.csv"), str(tmp_path / "out")))
    manifest, records = _records(tmp_path / "out")
    assert manifest["multi_label"] and manifest["class_names"] == ["a", "b"]
    assert {s: v["count"] for s, v in manifest["splits"].items()} == {"train": 2, "val": 1, "test": 1}
    assert sorted(tuple(r["label"]) for r in records) == [(0.0, 1.0), (1.0, 0.0), (1.0, 1.0), (1.0, 1.0)]


def test_bad_header_names_the_file_and_columns(tmp_path):
    (tmp_path / "bad.csv").write_text("file,diagnosis\nx.png,1\n")
    with pytest.raises(ValueError, match=r"bad.csv: missing column\(s\) \['path', 'label'\]"):
        sum(convert_csv(str(tmp_path / "bad.csv"), str(tmp_path / "out")))


def test_patient_split_is_deterministic_and_stratified():
    patients = [f"p{i // 2}" for i in range(200)]
    labels = [int(i // 2 % 4 == 0) for i in range(200)]
    first = patient_split(patients, labels, seed=3)
    assert first == patient_split(patients, labels, seed=3)
    positive_patients_in_test = {p for p, s, y in zip(patients, first[0], labels) if s == "test" and y}
    assert len(positive_patients_in_test) == 25 - round(0.9 * 25)  # the last 10% of the 25 positive patients


def test_cli_strict_fails_on_the_first_bad_row(tmp_path):
    _write_csv(tmp_path / "d.csv", [{"path": "nope.png", "label": "a"}], ("path", "label"))
    result = subprocess.run([sys.executable, "-m", "tfrecords_tools.convert", "csv", str(tmp_path / "d.csv"),
                             "--out", str(tmp_path / "out"), "--strict"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 2 and "d.csv:2: missing file" in result.stderr
