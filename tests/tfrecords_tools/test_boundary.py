"""The converters' boundary: one conversion per output folder, foreign folders untouched, clear messages
instead of tracebacks (a locked folder, a full disk, a bad table), CSV rows that do not line up."""

import errno
import glob
import os
import socket

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfrecords_tools import convert, sources
from tfrecords_tools.boundary import LOCK_NAME, OutputLockedError, claim_output, ragged_row
from tfrecords_tools.writer import JOURNAL_NAME
from tfxmed.errors import OutputExistsError, Refusal
from tfxmed.storage import load_manifest


def _tree(root, rng, per_class=8):
    for name in ("normal", "pneumonia"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8)).save(root / name / f"{i}.png")
    return str(root)


def _manifest_without_time(out):
    manifest = load_manifest(str(out))
    manifest.pop("created")
    return manifest


def test_a_second_conversion_into_the_same_folder_is_refused_while_the_first_runs(tmp_path, rng):
    root, out = _tree(tmp_path / "tree", rng), str(tmp_path / "out")
    first = sources.convert_folder(root, out, shard_examples=2, salt="s")
    next(first)  # the first conversion holds out/.lock now
    lock = os.path.join(out, LOCK_NAME)
    assert open(lock).read().split() == [str(os.getpid()), socket.gethostname()]
    with pytest.raises(OutputLockedError, match=rf"{LOCK_NAME} exists: another conversion \(pid {os.getpid()}"):
        sum(sources.convert_folder(root, out, shard_examples=2, salt="s"))
    sum(first)  # the first one is not disturbed by the refused second one, and removes its lock at the end
    assert not os.path.exists(lock)
    sum(sources.convert_folder(root, str(tmp_path / "alone"), shard_examples=2, salt="s"))
    assert _manifest_without_time(out) == _manifest_without_time(tmp_path / "alone")


def test_a_stale_lock_is_named_with_how_to_clear_it(tmp_path, rng):
    root, out = _tree(tmp_path / "tree", rng), tmp_path / "out"
    out.mkdir()
    (out / LOCK_NAME).write_text(f"999999999 {socket.gethostname()}\n")  # a killed conversion's lock
    result = convert.main(["folder", root, "--out", str(out), "--salt", "s"])
    assert result == 2
    with pytest.raises(OutputLockedError, match=r"pid 999999999 is not running on this host: the lock is stale\)"
                                               r".*delete .*\.lock and re-run"):
        sum(sources.convert_folder(root, str(out), salt="s"))
    assert (out / LOCK_NAME).read_text() == f"999999999 {socket.gethostname()}\n"  # never removed for the user
    (out / LOCK_NAME).unlink()
    sum(sources.convert_folder(root, str(out), salt="s"))
    assert sorted(os.listdir(out)) == sorted(["manifest.json", "skipped.csv", JOURNAL_NAME,
                                              *(os.path.basename(p) for p in glob.glob(str(out / "*.tfrecord")))])


def test_a_folder_tfxmed_did_not_write_is_refused_and_left_untouched(tmp_path, rng):
    root = _tree(tmp_path / "tree", rng)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "manifest.json").write_text('{"name": "someone else\'s"}')
    (theirs / "notes.txt").write_text("keep me")
    before = {p.name: p.read_bytes() for p in theirs.iterdir()}
    with pytest.raises(OutputExistsError, match=r"not empty and was not written by tfxmed.*'notes.txt'"):
        sum(sources.convert_folder(root, str(theirs), salt="s"))
    assert {p.name: p.read_bytes() for p in theirs.iterdir()} == before
    with pytest.raises(Refusal, match="inside the image folder"):  # its shards would be read as a class
        sum(sources.convert_folder(root, os.path.join(root, "out"), salt="s"))
    assert not os.path.exists(os.path.join(root, "out"))


def test_a_command_shares_its_claim_with_one_writer_at_a_time(tmp_path):
    out = str(tmp_path / "out")
    with claim_output(out) as lock, claim_output(out, writer=True) as again:
        assert lock == again and os.path.exists(lock)
        with pytest.raises(OutputLockedError):
            with claim_output(out, writer=True):
                pass
    with pytest.raises(OutputLockedError), claim_output(out), claim_output(out):
        pass
    assert not os.path.exists(lock)


_REAL_WRITER = tf.io.TFRecordWriter


class _FullDisk:
    """A TFRecordWriter whose third shard hits a full disk after writing part of its temporary file."""

    calls = 0

    def __init__(self, path):
        _FullDisk.calls += 1
        self.path, self.real = path, _REAL_WRITER(path)

    def __enter__(self):
        return self

    def write(self, record):
        if _FullDisk.calls == 3:
            self.real.write(record)
            self.real.flush()
            raise tf.errors.ResourceExhaustedError(None, None, f"{self.path}; No space left on device")
        self.real.write(record)

    def __exit__(self, *exc_info):
        self.real.close()


def test_a_full_disk_prints_what_to_do_and_rerunning_resumes(tmp_path, rng, monkeypatch, capsys):
    root, out = _tree(tmp_path / "tree", rng), str(tmp_path / "out")
    arguments = ["folder", root, "--out", out, "--salt", "s", "--shard-examples", "2"]
    with monkeypatch.context() as patch:
        patch.setattr(tf.io, "TFRecordWriter", _FullDisk)
        assert convert.main(arguments) == 1
    error = capsys.readouterr().err
    assert f"error: no space left on the device holding {out}" in error and "re-run the same command" in error
    assert "Traceback" not in error
    assert not [name for name in os.listdir(out) if ".tmp" in name or name == LOCK_NAME]  # no stale temp, no lock
    assert os.path.exists(os.path.join(out, JOURNAL_NAME)) and not os.path.exists(os.path.join(out, "manifest.json"))
    assert convert.main(arguments) == 0  # the same command resumes
    sum(sources.convert_folder(root, str(tmp_path / "whole"), shard_examples=2, salt="s"))
    assert _manifest_without_time(out) == _manifest_without_time(tmp_path / "whole")


def test_system_errors_keep_their_errno():
    from tfrecords_tools.writer import _write_shard

    with pytest.raises(OSError) as caught:
        _write_shard("/proc/no/such/folder/train-00000.tfrecord", [b"x"])
    assert caught.value.errno in (errno.ENOENT, errno.EIO, errno.EACCES)


def test_rows_that_do_not_line_up_with_the_header():
    assert ragged_row({"path": "a.png", "label": "x"}) is None
    assert ragged_row({"path": "a.png", "label": "x", None: ["", " "]}) is None  # trailing commas
    assert "1 more field(s) than the header" in ragged_row({"path": "a", "label": "b", None: ["c"]})
    assert ragged_row({"path": "a.png", "label": None}) is None  # optional unless required
    assert "fewer fields than the header (no label)" in ragged_row({"path": "a.png", "label": None}, ("label",))
    assert "no label" in ragged_row({"path": "a.png", "label": None}, "*")


def test_a_refused_command_prints_the_reason_and_leaves_no_folder_behind(tmp_path, rng, capsys):
    root = _tree(tmp_path / "tree", rng)
    np.savez(tmp_path / "bad.npz", **{f"{s}_{k}": np.zeros((2, 4, 4), np.float32) * np.nan
                                      for s in ("train", "val", "test") for k in ("images", "labels")})
    assert convert.main(["medmnist", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "out"), "--salt", "s"]) == 2
    assert convert.main(["folder", root, "--out", os.path.join(root, "records"), "--salt", "s"]) == 2
    errors = capsys.readouterr().err
    assert "error: " in errors and "bad.npz: train_images holds NaN" in errors and "inside the image folder" in errors
    assert "Traceback" not in errors
    assert not os.path.exists(tmp_path / "out") and sorted(os.listdir(root)) == ["normal", "pneumonia"]
