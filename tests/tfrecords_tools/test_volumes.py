"""Volume converters (issue 15): synthetic CT (resumable, byte-identical), MedMNIST 3-D, NIfTI with spacing and a
mask, and DICOM series with skip-and-report and no names, ids or dates in any output."""

import glob
import os

import numpy as np
import pytest
import tensorflow as tf

from tests.tfrecords_tools.test_dicom_series import IDENTIFYING, write_series
from tfrecords_tools.volumes import convert_medmnist3d, convert_synthetic_volumes, convert_volume_table
from tfxmed.data.volume_features import parse_volume
from tfxmed.storage import load_manifest


def _records(out, num_classes=2):
    manifest = load_manifest(out)
    parsed = {}
    for split, info in manifest["splits"].items():
        files = [os.path.join(out, shard["file"]) for shard in info["shards"]]
        parsed[split] = [parse_volume(raw, num_classes) for raw in tf.data.TFRecordDataset(files)]
    return manifest, parsed


def _shard_bytes(out):
    return {os.path.basename(p): open(p, "rb").read() for p in sorted(glob.glob(os.path.join(out, "*.tfrecord")))}


def test_synthetic_volumes_convert_with_masks_and_a_resumed_run_writes_the_same_bytes(tmp_path):
    counts = {"train": 12, "val": 4, "test": 4}
    whole = str(tmp_path / "whole")
    assert sum(convert_synthetic_volumes(whole, size=16, counts=counts, shard_examples=4, salt="s")) == 20
    manifest, parsed = _records(whole)
    assert manifest["kind"] == "volume" and manifest["window"] == [-1000.0, 400.0]
    assert {s: v["count"] for s, v in manifest["splits"].items()} == counts
    assert 0.0 < manifest["pixel_mean"][0] < 1.0  # μ of the windowed voxels
    example = parsed["train"][0]
    assert example["volume"].shape == (16, 16, 16) and example["volume"].dtype == tf.int16
    positives = [e for e in parsed["train"] if int(e["label_index"]) == 1]
    assert positives and all(bool(e["has_mask"]) and e["mask"].numpy().any() for e in positives)
    np.testing.assert_allclose(example["spacing"].numpy(), [2.0, 1.5, 1.5])
    interrupted = str(tmp_path / "resumed")
    ticks = convert_synthetic_volumes(interrupted, size=16, counts=counts, shard_examples=4, salt="s")
    for _ in range(9):  # stop after two shards of train
        next(ticks)
    ticks.close()
    assert sum(convert_synthetic_volumes(interrupted, size=16, counts=counts, shard_examples=4, salt="s",
                                         resume=True)) == 20
    assert _shard_bytes(interrupted) == _shard_bytes(whole)


def test_medmnist3d_keeps_the_official_splits(tmp_path, rng):
    path = tmp_path / "organmnist3d.npz"
    arrays = {}
    for split, count in (("train", 6), ("val", 2), ("test", 2)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (count, 28, 28, 28)).astype(np.uint8)
        arrays[f"{split}_labels"] = (np.arange(count) % 3).reshape(-1, 1)
    np.savez(path, **arrays)
    out = str(tmp_path / "out")
    assert sum(convert_medmnist3d(str(path), out, salt="s")) == 10
    manifest, parsed = _records(out, 3)
    assert manifest["window"] == [0.0, 255.0] and manifest["class_names"] == ["class_0", "class_1", "class_2"]
    np.testing.assert_array_equal(parsed["val"][1]["volume"].numpy(), arrays["val_images"][1])
    bad = tmp_path / "flat.npz"
    np.savez(bad, train_images=np.zeros((2, 28, 28)), train_labels=np.zeros((2, 1)))
    with pytest.raises(ValueError, match=r"\[N, D, H, W\]"):
        sum(convert_medmnist3d(str(bad), str(tmp_path / "bad")))


def test_nifti_round_trips_voxels_spacing_and_mask(tmp_path, rng):
    import nibabel

    rows = ["path,label,mask"]
    volumes = {}
    for i in range(6):
        data = rng.integers(-1000, 1000, (10, 9, 7)).astype(np.int16)  # (x, y, z)
        mask = np.zeros(data.shape, np.uint8)
        mask[2:4, 3:5, 1:3] = 1
        affine = np.diag([0.8, 0.9, 2.5, 1.0])
        nibabel.save(nibabel.Nifti1Image(data, affine), tmp_path / f"ct{i}.nii.gz")
        nibabel.save(nibabel.Nifti1Image(mask, affine), tmp_path / f"ct{i}_mask.nii.gz")
        rows.append(f"ct{i}.nii.gz,{'nodule' if i % 2 else 'normal'},ct{i}_mask.nii.gz")
        volumes[f"nifti/row-{i + 2}"] = (data, mask)
    (tmp_path / "volumes.csv").write_text("\n".join(rows) + "\n")
    out = str(tmp_path / "out")
    assert sum(convert_volume_table("nifti", str(tmp_path / "volumes.csv"), out, salt="s",
                                    fractions=(0.5, 0.25, 0.25))) == 6
    manifest, parsed = _records(out)
    assert manifest["class_names"] == ["nodule", "normal"] and sum(v["count"] for v in manifest["splits"].values()) == 6
    for example in (e for split in parsed.values() for e in split):
        data, mask = volumes[example["source"].numpy().decode()]
        np.testing.assert_array_equal(example["volume"].numpy(), data.transpose(2, 1, 0))  # (D, H, W) = (z, y, x)
        np.testing.assert_array_equal(example["mask"].numpy() > 0, mask.transpose(2, 1, 0) > 0)
        np.testing.assert_allclose(example["spacing"].numpy(), [2.5, 0.9, 0.8], rtol=1e-6)
        np.testing.assert_allclose(example["direction"].numpy(), [0, 0, 1, 0, -1, 0, -1, 0, 0], atol=1e-6)


def test_dicom_series_are_converted_bad_ones_reported_and_no_identifier_reaches_any_output(tmp_path, rng):
    rows = ["path,label"]
    for i in range(6):
        write_series(tmp_path / f"series{i}", rng.integers(0, 2000, (4, 8, 8)).astype(np.uint16),
                     patient_id=f"MRN-004{i}")
        rows.append(f"series{i},{'nodule' if i % 2 else 'normal'}")
    write_series(tmp_path / "gap", rng.integers(0, 2000, (4, 8, 8)).astype(np.uint16), positions=[0, 2.5, 7.5, 10])
    rows.append("gap,normal")
    (tmp_path / "series.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "masked.csv").write_text("path,label,mask\nseries0,normal,Doe_Jane_mask.nii.gz\n"
                                         "series1,nodule,\nseries2,normal,\n")
    out = str(tmp_path / "out")
    assert sum(convert_volume_table("dicom-series", str(tmp_path / "series.csv"), out, salt="s",
                                    fractions=(0.6, 0.2, 0.2))) == 7
    manifest, parsed = _records(out)
    assert sum(v["count"] for v in manifest["splits"].values()) == 6 and manifest["skipped"] == 1
    skipped = (tmp_path / "out" / "skipped.csv").read_text()
    assert "row 8" in skipped and "a slice is missing" in skipped
    patients = {e["patient"].numpy() for split in parsed.values() for e in split}
    assert len(patients) == 6 and all(len(p) == 32 for p in patients)  # hashed, one per PatientID
    files = [os.path.join(out, name) for name in os.listdir(out)]  # hidden ones too (the journal)
    blob = b"".join(open(p, "rb").read() for p in files if os.path.isfile(p))
    assert not any(token in blob for token in IDENTIFYING + (b"MRN-004",))
    masked = str(tmp_path / "masked_out")
    sum(convert_volume_table("dicom-series", str(tmp_path / "masked.csv"), masked, salt="s", fractions=(1, 0, 0)))
    reasons = (tmp_path / "masked_out" / "skipped.csv").read_text()
    assert "masks for DICOM series are not supported yet" in reasons and "Doe_Jane" not in reasons


def test_the_command_converts_volumes_and_names_a_missing_table(tmp_path, capsys):
    from tfrecords_tools.convert import main

    out = str(tmp_path / "cli")
    assert main(["synthetic-volumes", "--size", "16", "--train", "4", "--val", "2", "--test", "2", "--out", out,
                 "--salt", "s"]) == 0
    assert load_manifest(out)["kind"] == "volume"
    assert main(["nifti", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "n"), "--salt", "s"]) == 2
    assert "missing.csv" in capsys.readouterr().err
