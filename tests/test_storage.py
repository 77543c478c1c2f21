"""Atomic writes and the manifest (`tfxmed.storage`): a failed write leaves the old file and no temporary,
remote (`ram://`) paths go through tf.io.gfile, and a missing manifest is named."""

import hashlib
import json
import os

import pytest

from tfxmed import storage
from tfxmed.storage import (
    atomic_path,
    exists,
    file_sha256,
    load_manifest,
    open_file,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
    write_yaml_atomic,
)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    write_json_atomic({"auc": 0.9}, target)
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        write_json_atomic({"auc": float("nan")}, target)  # NaN is not JSON: refused before anything is renamed
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_path(target, ".json") as temporary:
            open(temporary, "w").write('{"auc": 0.1')  # half written
            raise RuntimeError("killed")
    assert json.load(open(target)) == {"auc": 0.9}
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_the_temporary_sits_beside_the_target_with_its_suffix(tmp_path):
    with atomic_path(tmp_path / "best.keras", ".keras") as temporary:
        assert temporary == str(tmp_path / ".best.keras.tmp.keras")
        assert not os.path.exists(tmp_path / "best.keras")  # not under the final name while being written
        open(temporary, "wb").write(b"model")
    assert open(tmp_path / "best.keras", "rb").read() == b"model" and os.listdir(tmp_path) == ["best.keras"]


def test_every_writer_round_trips(tmp_path):
    write_bytes_atomic(b"\x00\x01", tmp_path / "a.bin")
    write_text_atomic("ünïcode\n", tmp_path / "a.txt")
    write_yaml_atomic({"b": 1, "a": [1, 2]}, tmp_path / "a.yaml")
    assert open(tmp_path / "a.bin", "rb").read() == b"\x00\x01"
    assert open(tmp_path / "a.txt", encoding="utf-8").read() == "ünïcode\n"
    assert open(tmp_path / "a.yaml").read() == "b: 1\na:\n- 1\n- 2\n"  # keys in the given order
    assert file_sha256(tmp_path / "a.bin") == hashlib.sha256(b"\x00\x01").hexdigest()


def test_ram_paths_go_through_gfile(tmp_path):
    import tensorflow as tf

    folder = f"ram://storage-test-{os.getpid()}"
    tf.io.gfile.makedirs(folder)
    path = f"{folder}/manifest.json"
    assert storage.is_remote(path) and not storage.is_remote(str(tmp_path))
    assert not exists(path)
    write_json_atomic({"splits": {"train": {"count": 3}}}, path)
    write_json_atomic({"splits": {"train": {"count": 4}}}, path)  # replaces the existing file
    assert exists(path) and load_manifest(folder) == {"splits": {"train": {"count": 4}}}
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_path(path) as temporary:
            with open_file(temporary, "w") as stream:
                stream.write('{"splits": ')
            raise RuntimeError("killed")
    assert tf.io.gfile.listdir(folder) == ["manifest.json"]  # no temporary left behind
    with open_file(path) as stream:
        assert json.load(stream)["splits"]["train"]["count"] == 4
    write_bytes_atomic(b"\x00\x01", f"{folder}/blob")
    assert file_sha256(f"{folder}/blob") == hashlib.sha256(b"\x00\x01").hexdigest()


def test_a_missing_manifest_names_the_file_and_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_manifest(tmp_path / "records")
    message = str(error.value)
    assert message.startswith(os.path.join(str(tmp_path / "records"), "manifest.json") + " not found")
    assert "python -m tfxmed convert" in message
