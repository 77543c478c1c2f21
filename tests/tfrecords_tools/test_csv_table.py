import csv
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tests.helpers import REPO
from tfrecords_tools.csv_table import convert_csv
from tfxmed.data import features
from tfxmed.errors import Refusal
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
    assert any("missing file" in r for r in reasons) and "empty label" in reasons
    assert any("unreadable" in r for r in reasons)
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


def test_cli_strict_fails_on_the_first_bad_row(tmp_path):
    _write_csv(tmp_path / "d.csv", [{"path": "nope.png", "label": "a"}], ("path", "label"))
    result = subprocess.run([sys.executable, "-m", "tfrecords_tools.convert", "csv", str(tmp_path / "d.csv"),
                             "--out", str(tmp_path / "out"), "--strict"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 2 and "d.csv:2: missing file" in result.stderr


def _png(path, shape, value=None, rng=None):
    pixels = np.full(shape, value, np.uint8) if value is not None else rng.integers(0, 256, shape, dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def _reasons(out):
    with open(out / "skipped.csv") as stream:
        return {row["item"]: row["reason"] for row in csv.DictReader(stream)}


def test_paths_that_leave_the_image_root_are_skipped_unless_allowed(tmp_path, rng, monkeypatch):
    from tfrecords_tools import items as items_module

    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir(), outside.mkdir()
    _png(outside / "secret.png", (5, 7), 99)  # a shape no image inside the root has
    (root / "link.png").symlink_to(outside / "secret.png")
    (root / "mask_link.png").symlink_to(outside / "secret.png")
    rows = []
    for i in range(6):
        _png(root / f"{i}.png", (8, 8), rng=rng)
        rows.append({"path": f"{i}.png", "label": "ab"[i % 2]})
    rows += [{"path": "../outside/secret.png", "label": "a"}, {"path": str(outside / "secret.png"), "label": "b"},
             {"path": "link.png", "label": "a"}, {"path": "0.png", "label": "a", "mask": "mask_link.png"}]
    _write_csv(root / "d.csv", rows, ("path", "label", "mask"))
    reads = []
    real_read = items_module._read
    monkeypatch.setattr(items_module, "_read", lambda path, channels: reads.append(path) or real_read(path, channels))
    sum(convert_csv(str(root / "d.csv"), str(tmp_path / "out"), salt="s"))
    reasons = _reasons(tmp_path / "out")
    for line, column in ((8, "path"), (9, "path"), (10, "path"), (11, "mask")):
        assert reasons[f"d.csv:{line}"].startswith(f"column {column}: resolves outside the image root")
        assert "--allow-outside-root" in reasons[f"d.csv:{line}"]
    assert all(os.path.realpath(path).startswith(str(root)) for path in reads)  # never opened
    _, records = _records(tmp_path / "out")
    assert len(records) == 6

    sum(convert_csv(str(root / "d.csv"), str(tmp_path / "allowed"), salt="s", allow_outside_root=True))
    manifest, records = _records(tmp_path / "allowed")
    assert len(records) == 7 and manifest["skipped"] == 3  # the outside image once; its other listings, the mask
    reasons = _reasons(tmp_path / "allowed")
    assert reasons["d.csv:9"].startswith("duplicate of d.csv:8 (the same file)")


def test_one_image_listed_twice_under_two_patients_lands_in_one_split(tmp_path, rng):
    """The probe's leak: one file (and a byte-identical copy) under several patient ids reached val and test."""
    rows = []
    for p in range(20):
        _png(tmp_path / f"{p}.png", (8, 8), rng=rng)
        rows.append({"path": f"{p}.png", "label": "ab"[p % 2], "patient_id": f"P{p}"})
    (tmp_path / "copy.png").write_bytes((tmp_path / "3.png").read_bytes())
    rows += [{"path": "3.png", "label": "b", "patient_id": f"Q{k}"} for k in range(6)]
    rows += [{"path": "./copy.png", "label": "b", "patient_id": "Q9"}]
    _write_csv(tmp_path / "d.csv", rows, ("path", "label", "patient_id"))
    sum(convert_csv(str(tmp_path / "d.csv"), str(tmp_path / "out"), salt="s"))
    manifest, records = _records(tmp_path / "out")
    assert len(records) == 20 and manifest["skipped"] == 7
    reasons = _reasons(tmp_path / "out")
    assert all(reasons[f"d.csv:{line}"].startswith("duplicate of d.csv:5 (the same file)") for line in range(22, 28))
    assert reasons["d.csv:28"].startswith("duplicate of d.csv:5 (identical image bytes)")
    blob = b"".join(open(os.path.join(tmp_path, "out", s["file"]), "rb").read()
                    for v in manifest["splits"].values() for s in v["shards"])
    from tfxmed.data.features import encode_image, resolve_encoding
    pixels = np.asarray(Image.open(tmp_path / "3.png"))[..., None]
    assert blob.count(encode_image(pixels, resolve_encoding("auto", pixels))) == 1


def test_rows_that_do_not_line_up_are_skipped_with_a_reason_not_a_traceback(tmp_path, rng):
    for name in ("a.png", "b.png", "c.png"):
        _png(tmp_path / name, (8, 8), rng=rng)
    (tmp_path / "d.csv").write_text("label,path\nx,a.png\ny,b.png\nz\nc.png,y\ny,c.png,extra\n\n,\n")
    sum(convert_csv(str(tmp_path / "d.csv"), str(tmp_path / "out"), salt="s"))
    reasons = _reasons(tmp_path / "out")
    assert reasons["d.csv:4"] == "column path: empty (expected a file path relative to the image root)"
    assert reasons["d.csv:5"] == "missing file (column path, relative to the image root)"  # the fields swapped
    assert reasons["d.csv:6"].startswith("1 more field(s) than the header (an unquoted comma?)")
    assert "empty label" in reasons.values()


def test_a_split_column_is_checked_row_by_row_and_as_a_whole(tmp_path, rng):
    rows = []
    for i, split in enumerate(["train", "train", "val", "", "test"]):
        _png(tmp_path / f"{i}.png", (8, 8), rng=rng)
        rows.append({"path": f"{i}.png", "label": "ab"[i % 2], "split": split})
    _write_csv(tmp_path / "d.csv", rows, ("path", "label", "split"))
    sum(convert_csv(str(tmp_path / "d.csv"), str(tmp_path / "out"), salt="s"))
    assert _reasons(tmp_path / "out") == {"d.csv:5": "column split: empty (expected one of train, val, test)"}
    rows[2]["split"], rows[4]["split"] = "validation", "Test"
    _write_csv(tmp_path / "d.csv", rows, ("path", "label", "split"))
    with pytest.raises(Refusal, match=r"d.csv: column split must be one of train, val, test; found line 4: "
                                      r"'validation', line 6: 'Test'"):
        sum(convert_csv(str(tmp_path / "d.csv"), str(tmp_path / "refused"), salt="s"))
    assert not os.path.exists(tmp_path / "refused")


@pytest.mark.parametrize("content, message", [
    ("path,label\ncafé.png,x\n".encode("latin-1"), r"d.csv: not UTF-8 text \(byte 14\)"),
    (f"path,label\n\"{'x' * 200_000}\",a\n".encode(), r"d.csv:\d+: not a readable CSV row \(field larger"),
])
def test_a_table_that_is_not_utf8_csv_is_refused_by_name(tmp_path, capsys, content, message):
    from tfrecords_tools.convert import main

    (tmp_path / "d.csv").write_bytes(content)
    with pytest.raises(Refusal, match=message):
        sum(convert_csv(str(tmp_path / "d.csv"), str(tmp_path / "out"), salt="s"))
    assert main(["csv", str(tmp_path / "d.csv"), "--out", str(tmp_path / "out"), "--salt", "s"]) == 2
    assert re.search(f"error: .*{message}", capsys.readouterr().err)
