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
    # Named by position (the 11th image file of normal/ in name order), never by a name that may hold an MRN.
    assert [r["item"] for r in rows] == ["item 11 of folder normal/"]
    assert manifest["skipped"] == 1
    # File and folder names may carry patient names: the records hold only a salted hash of the path.
    shards = [os.path.join(tmp_path, "out", s["file"]) for v in manifest["splits"].values() for s in v["shards"]]
    blob = b"".join(open(path, "rb").read() for path in shards)
    assert os.path.join("pneumonia", "3.png").encode() not in blob and b".png" not in blob
    with pytest.raises(ValueError, match="item 11 of folder normal/: unreadable image"):
        _drain(sources.convert_folder(str(root), str(tmp_path / "strict"), strict=True))


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


def test_folder_links_out_of_the_root_are_skipped_unless_allowed(tmp_path, rng, monkeypatch):
    """The probe's case: a link to /etc/passwd in a class folder was opened; now nothing outside is read."""
    root, outside = tmp_path / "tree", tmp_path / "outside"
    (outside / "more").mkdir(parents=True)
    Image.fromarray(np.full((5, 7), 99, np.uint8)).save(outside / "secret.png")
    Image.fromarray(np.full((5, 7), 98, np.uint8)).save(outside / "more" / "1.png")
    for name in ("normal", "pneumonia"):
        (root / name).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(root / name / f"{i}.png")
    (root / "normal" / "passwd.png").symlink_to("/etc/passwd")
    (root / "pneumonia" / "x.png").symlink_to(outside / "secret.png")
    (root / "linked").symlink_to(outside / "more", target_is_directory=True)  # a class folder outside the root
    reads = []
    real_read = items._read
    monkeypatch.setattr(items, "_read", lambda path, channels: reads.append(path) or real_read(path, channels))
    _drain(sources.convert_folder(str(root), str(tmp_path / "out"), salt="s"))
    assert reads and all(os.path.realpath(path).startswith(str(root)) for path in reads)
    with open(tmp_path / "out" / "skipped.csv") as stream:
        reasons = {row["item"]: row["reason"] for row in csv.DictReader(stream)}
    assert set(reasons) == {"folder linked/", "item 6 of folder normal/", "item 6 of folder pneumonia/"}
    assert all("outside the root; pass --allow-outside-root" in reason for reason in reasons.values())
    assert sum(v["count"] for v in load_manifest(str(tmp_path / "out"))["splits"].values()) == 10

    _drain(sources.convert_folder(str(root), str(tmp_path / "allowed"), salt="s", allow_outside_root=True))
    manifest = load_manifest(str(tmp_path / "allowed"))
    assert sum(v["count"] for v in manifest["splits"].values()) == 12 and manifest["skipped"] == 1  # passwd: unreadable
