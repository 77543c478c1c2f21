"""Resumable and parallel conversion (byte-identical shards) and a corrupt-file corpus."""

import csv
import glob
import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from tests.helpers import write_dicom
from tfrecords_tools import items as items_module
from tfrecords_tools.csv_table import convert_csv
from tfrecords_tools.sources import convert_folder
from tfrecords_tools.writer import JOURNAL_NAME
from tfxmed.storage import load_manifest


def _tree(root, rng, per_class=30):
    for name in ("normal", "pneumonia"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            size = int(rng.integers(16, 40))
            Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(root / name / f"{i:03d}.png")
    (root / "normal" / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return str(root)


def _shards(out):
    return {os.path.basename(p): open(p, "rb").read() for p in sorted(glob.glob(os.path.join(out, "*.tfrecord")))}


def _manifest_without_time(out):
    manifest = load_manifest(out)
    manifest.pop("created")
    return manifest


def test_a_killed_conversion_resumes_to_byte_identical_shards(tmp_path, rng, monkeypatch):
    root = _tree(tmp_path / "tree", rng)
    whole = str(tmp_path / "whole")
    sum(convert_folder(root, whole, shard_examples=5, salt="s"))

    out = str(tmp_path / "resumed")
    ticks = convert_folder(root, out, shard_examples=5, salt="s", resume=True)
    for _ in range(33):  # the process "dies" after 33 items: several shards are final, one is buffered
        next(ticks)
    ticks.close()
    journal = json.load(open(os.path.join(out, JOURNAL_NAME)))
    finished = [s["file"] for split in journal["splits"].values() for s in split["shards"]]
    assert finished and not os.path.exists(os.path.join(out, "manifest.json"))
    last = os.path.join(out, finished[-1])
    open(last, "ab").write(b"garbage")  # a shard damaged after the kill is verified by sha256 and redone
    open(os.path.join(out, ".train-00009.tfrecord.tmp"), "wb").write(b"half")  # a half-written temp file

    reads = []
    real_read = items_module._read
    monkeypatch.setattr(items_module, "_read", lambda path, channels: reads.append(path) or real_read(path, channels))
    sum(convert_folder(root, out, shard_examples=5, salt="s", resume=True))
    assert 0 < len(reads) < 61  # images in verified shards were not read again
    assert _shards(out) == _shards(whole)
    assert _manifest_without_time(out) == _manifest_without_time(whole)
    assert open(os.path.join(out, "skipped.csv")).read() == open(os.path.join(whole, "skipped.csv")).read()


@pytest.mark.slow
def test_parallel_workers_write_the_same_shards(tmp_path, rng):
    root = _tree(tmp_path / "tree", rng, per_class=12)
    sum(convert_folder(root, str(tmp_path / "serial"), shard_examples=4, salt="s"))
    sum(convert_folder(root, str(tmp_path / "parallel"), shard_examples=4, salt="s", workers=2))
    assert _shards(str(tmp_path / "parallel")) == _shards(str(tmp_path / "serial"))


def _png_bytes(array, mode=None):
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def test_corrupt_corpus_converts_without_crashing_and_reports_every_bad_file(tmp_path, rng):
    folder = tmp_path / "corpus"
    folder.mkdir()
    good, rows = [], []
    for i in range(12):
        name = f"good_{i}.png"
        Image.fromarray(rng.integers(0, 256, (24, 24), dtype=np.uint8)).save(folder / name)
        good.append(name)
    # Unusual but valid: 16-bit (min-max scaled, not clipped), RGBA, a JPEG named .png, a DICOM.
    deep = (np.arange(24 * 24).reshape(24, 24) * 100).astype(np.uint16)
    Image.fromarray(deep).save(folder / "deep16.png")
    Image.fromarray(rng.integers(0, 256, (24, 24, 4), dtype=np.uint8)).save(folder / "rgba.png")
    Image.fromarray(rng.integers(0, 256, (24, 24), dtype=np.uint8)).save(folder / "jpeg_inside.png", format="JPEG")
    write_dicom(folder / "fine.dcm", rng.integers(0, 4095, (24, 24)))
    good += ["deep16.png", "rgba.png", "jpeg_inside.png", "fine.dcm"]
    bad = {
        "zero_bytes.png": b"",
        "truncated.png": _png_bytes(rng.integers(0, 256, (24, 24), dtype=np.uint8))[:60],
        "text.png": b"this is not an image\n",
        "truncated.jpg": b"\xff\xd8\xff\xe0" + b"\x00" * 40,
        "tiny.png": _png_bytes(np.zeros((1, 1), np.uint8)),
        "garbage.dcm": b"DICM" * 10,
    }
    for name, content in bad.items():
        (folder / name).write_bytes(content)
    write_dicom(folder / "no_pixels.dcm", np.zeros((24, 24)), with_pixels=False)
    write_dicom(folder / "frames.dcm", np.zeros((2, 24, 24)), frames=2)
    mask = np.zeros((10, 10), np.uint8)
    Image.fromarray(mask).save(folder / "small_mask.png")
    bad_names = [*bad, "no_pixels.dcm", "frames.dcm"]
    for i, name in enumerate(good + bad_names):
        rows.append([name, ["normal", "pneumonia"][i % 2], "", f"P{i}"])
    rows.append(["good_0.png", "normal", "small_mask.png", "P90"])  # mask of another size
    rows.append(["absent.png", "normal", "", "P91"])  # missing file
    rows.append(["good_1.png", "", "", "P92"])  # empty label
    with open(folder / "labels.csv", "w", newline="") as stream:
        csv.writer(stream).writerows([["path", "label", "mask", "patient_id"], *rows])

    out = tmp_path / "out"
    sum(convert_csv(str(folder / "labels.csv"), str(out), salt="s", shard_examples=8))  # no crash
    manifest = load_manifest(str(out))
    with open(out / "skipped.csv") as stream:
        reported = list(csv.DictReader(stream))
    assert manifest["skipped"] == len(reported) == len(bad_names) + 3  # 11 bad items, 11 kinds
    assert all(row["reason"] for row in reported)
    assert sum(v["count"] for v in manifest["splits"].values()) == len(good)  # every good file present
    reasons = " ".join(row["reason"] for row in reported)
    for expected in ("unreadable image", "too small", "without pixel data", "frames", "does not match", "missing file",
                     "empty label"):
        assert expected in reasons, expected
    assert "Doe" not in reasons and "MRN" not in reasons


def test_resume_refuses_other_inputs_options_or_salt_and_a_restart_drops_the_journal(tmp_path, rng):
    root = _tree(tmp_path / "tree", rng, per_class=10)
    out = str(tmp_path / "out")
    ticks = convert_folder(root, out, shard_examples=3, salt="s", resume=True)
    for _ in range(12):
        next(ticks)
    ticks.close()
    assert os.path.exists(os.path.join(out, JOURNAL_NAME))
    with pytest.raises(ValueError, match="shard_examples"):
        sum(convert_folder(root, out, shard_examples=4, salt="s", resume=True))
    with pytest.raises(ValueError, match="salt_check"):
        sum(convert_folder(root, out, shard_examples=3, salt="other", resume=True))
    (tmp_path / "tree" / "normal" / "new.png").write_bytes(open(os.path.join(root, "normal", "000.png"), "rb").read())
    with pytest.raises(ValueError, match="fingerprint"):  # the inputs changed
        sum(convert_folder(root, out, shard_examples=3, salt="s", resume=True))
    fresh = convert_folder(root, out, shard_examples=3, salt="s", resume=False)
    next(fresh)  # a restart killed before its first shard: the old journal is gone, nothing to adopt
    fresh.close()
    assert not os.path.exists(os.path.join(out, JOURNAL_NAME))


def test_an_empty_salt_is_never_used(tmp_path, monkeypatch):
    from tfrecords_tools.writer import DatasetWriter, hash_patient_id

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("TFXMED_ID_SALT", raising=False)
    writer = DatasetWriter(str(tmp_path / "out"), "x", ["a", "b"])
    assert writer.salt and writer.salt == open(tmp_path / "config" / "tfxmed" / "id_salt").read().strip()
    assert hash_patient_id("MRN-1", writer.salt) != hash_patient_id("MRN-1", "")
