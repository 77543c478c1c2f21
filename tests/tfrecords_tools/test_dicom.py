import csv
import os

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from tests.helpers import write_dicom  # noqa: E402
from tfrecords_tools.csv_table import convert_csv  # noqa: E402
from tfrecords_tools.dicom import linear_window, read_dicom  # noqa: E402
from tfxmed.storage import load_manifest  # noqa: E402


def test_rescale_window_and_monochrome1_by_hand(tmp_path):
    stored = np.array([[0, 100, 200, 300]], np.uint16).repeat(2, 0)
    # Modality LUT: 2·x − 100 → [−100, 100, 300, 500]; window centre 200.5, width 201 → [100, 301] ↦ [0, 1].
    write_dicom(tmp_path / "a.dcm", stored, slope=2.0, intercept=-100.0, window=(200.5, 201))
    image, patient = read_dicom(str(tmp_path / "a.dcm"))
    expected = np.clip((np.array([-100, 100, 300, 500]) - 200) / 200 + 0.5, 0, 1)
    np.testing.assert_array_equal(image[0], np.round(expected * 255).astype(np.uint8))
    assert patient == "MRN-0042" and image.dtype == np.uint8 and image.shape == (2, 4)
    write_dicom(tmp_path / "b.dcm", stored, photometric="MONOCHROME1")  # no window: min-max, inverted
    inverted, _ = read_dicom(str(tmp_path / "b.dcm"))
    np.testing.assert_array_equal(inverted[0], [255, 170, 85, 0])


def test_linear_window_follows_the_standard():
    values = np.array([0.0, 99.0, 100.0, 150.0, 199.0, 200.0])
    # c = 150, w = 100: below c − 0.5 − 49.5 = 100 → 0, above 199 → 1, linear in between.
    np.testing.assert_allclose(linear_window(values, 150, 100), [0, 0, 0, 0.5 + 0.5 / 99, 1, 1], atol=1e-12)


def test_csv_with_dicoms_hashes_ids_and_skips_refused_files(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(6):
        write_dicom(tmp_path / f"Doe_{i}.dcm", rng.integers(0, 4096, (16, 16)), patient_id=f"MRN-{i // 2}")
        rows.append({"path": f"Doe_{i}.dcm", "label": "a" if i % 2 else "b"})
    write_dicom(tmp_path / "multi.dcm", rng.integers(0, 4096, (2, 16, 16)), frames=2)
    write_dicom(tmp_path / "empty.dcm", np.zeros((16, 16)), with_pixels=False)
    rows += [{"path": "multi.dcm", "label": "a"}, {"path": "empty.dcm", "label": "b"}]
    with open(tmp_path / "d.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=["path", "label"])
        writer.writeheader()
        writer.writerows(rows)
    sum(convert_csv(str(tmp_path / "d.csv"), str(tmp_path / "out"), folds=3))
    manifest = load_manifest(str(tmp_path / "out"))
    assert sum(v["count"] for v in manifest["splits"].values()) == 6 and manifest["skipped"] == 2
    reasons = (tmp_path / "out" / "skipped.csv").read_text()
    assert "multi-frame DICOM (2 frames)" in reasons and "without pixel data" in reasons and "Doe" not in reasons
    blob = b"".join(open(os.path.join(tmp_path, "out", s["file"]), "rb").read()
                    for v in manifest["splits"].values() for s in v["shards"])
    for secret in (b"MRN-", b"Doe", b"Jane", b"Elsewhere"):
        assert secret not in blob
    assert b"Doe" not in (tmp_path / "out" / "manifest.json").read_bytes()


def test_class_per_folder_dicom_tree_splits_by_header_patient(tmp_path):
    import glob

    import tensorflow as tf

    from tfrecords_tools.sources import convert_folder
    from tfrecords_tools.writer import hash_patient_id
    from tfxmed.data import features
    from tfxmed.storage import load_manifest

    rng = np.random.default_rng(0)
    for label in ("normal", "effusion"):
        (tmp_path / "tree" / label).mkdir(parents=True)
        for i in range(12):
            write_dicom(tmp_path / "tree" / label / f"{i}.dcm", rng.integers(0, 4095, (16, 16)),
                         patient_id=f"MRN-{i // 3}")  # three images per patient
    out = tmp_path / "out"
    sum(convert_folder(str(tmp_path / "tree"), str(out), salt="s"))
    manifest = load_manifest(str(out))
    assert sum(v["count"] for v in manifest["splits"].values()) == 24
    split_of = {}
    for path in glob.glob(str(out / "*.tfrecord")):
        for raw in tf.data.TFRecordDataset(path):
            record = features.parse(raw, 2, 1)
            split_of.setdefault(record["patient"].numpy(), set()).add(path.split("/")[-1].split("-")[0])
            assert int(record["fold"]) >= 0
    assert set(split_of) == {hash_patient_id(f"MRN-{p}", "s").encode() for p in range(4)}
    assert all(len(splits) == 1 for splits in split_of.values())  # a patient's images share one split
    blob = b"".join(open(p, "rb").read() for p in glob.glob(str(out / "*")))
    assert b"MRN-" not in blob and b"Doe" not in blob


def test_file_names_that_hold_an_mrn_never_reach_skipped_csv_or_the_journal(tmp_path):
    """Finding 4: a DICOM named by its MRN was listed by name in skipped.csv and .progress.json."""
    from tfrecords_tools.sources import convert_folder
    from tfrecords_tools.writer import JOURNAL_NAME

    rng = np.random.default_rng(0)
    rows = []
    for label in ("normal", "effusion"):
        (tmp_path / "tree" / label).mkdir(parents=True)
        for i in range(4):
            name = f"MRN-{label[0]}{i}_Doe_Jane.dcm"
            write_dicom(tmp_path / "tree" / label / name, rng.integers(0, 4095, (16, 16)), patient_id=f"P{i}")
            rows.append({"path": f"tree/{label}/{name}", "label": label, "mask": ""})
        write_dicom(tmp_path / "tree" / label / "MRN-77_Doe_Jane.dcm", np.zeros((16, 16)), with_pixels=False)
        rows.append({"path": f"tree/{label}/MRN-77_Doe_Jane.dcm", "label": label, "mask": ""})
    rows[0]["mask"] = "tree/normal/MRN-77_Doe_Jane.dcm"  # a mask path in a reason would name it too
    with open(tmp_path / "d.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=["path", "label", "mask"])
        writer.writeheader()
        writer.writerows(rows)
    outputs = {"folder": convert_folder(str(tmp_path / "tree"), str(tmp_path / "folder"), shard_examples=2, salt="s"),
               "csv": convert_csv(str(tmp_path / "d.csv"), str(tmp_path / "csv"), shard_examples=2, salt="s")}
    for name, ticks in outputs.items():
        sum(ticks)
        out = tmp_path / name
        skipped = (out / "skipped.csv").read_text()
        assert load_manifest(str(out))["skipped"] >= 2 and "without pixel data" in skipped
        for text in (skipped, (out / JOURNAL_NAME).read_text(), (out / "manifest.json").read_text()):
            assert "MRN" not in text and "Doe" not in text and ".dcm" not in text, name
    skipped = (tmp_path / "folder" / "skipped.csv").read_text()
    assert "item 1 of folder normal/,file: DICOM without pixel data" in skipped
