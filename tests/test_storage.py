"""Atomic writes and the manifest (`tfxmed.storage`): a failed write leaves the old file and no temporary,
remote (`ram://`) paths go through tf.io.gfile (the whole quick path included), and a missing manifest is named."""

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


def test_a_remote_folder_is_moved_whole():
    import uuid

    import tensorflow as tf

    root = f"ram://move-{uuid.uuid4().hex}"  # ram:// is one filesystem per process: a fresh folder per run
    storage.make_dirs(f"{root}/source/deeper")
    write_text_atomic("a", f"{root}/source/one.txt")
    write_text_atomic("b", f"{root}/source/deeper/two.txt")
    storage.rename(f"{root}/source", f"{root}/target")  # ram:// alone would leave the files behind
    assert not exists(f"{root}/source") and not tf.io.gfile.exists(f"{root}/source/one.txt")
    assert sorted(storage.list_dir(f"{root}/target")) == ["deeper", "one.txt"]
    with open_file(f"{root}/target/deeper/two.txt") as stream:
        assert stream.read() == "b"


@pytest.mark.slow
def test_the_quick_path_runs_on_a_remote_filesystem(monkeypatch, tmp_path):
    """convert → train 1 epoch → evaluate → export with `ram://` standing in for `gs://`, in one process
    (ram:// lives in memory), and nothing lands on the local disk under a folder named "ram:"."""
    import tensorflow as tf

    from tests.helpers import TINY_CONFIG
    from tfrecords_tools import convert
    from tfxmed.config import load_config
    from tfxmed.distribute import make_strategy
    from tfxmed.evaluation import evaluate_run
    from tfxmed.exporting import export_run
    from tfxmed.training import train

    monkeypatch.chdir(tmp_path)  # a path mistaken for a local one would appear here
    root = "ram://quick-path"
    assert convert.main(["synthetic", "--image-size", "32", "--train", "64", "--val", "32", "--test", "32",
                         "--out", f"{root}/data", "--salt", "s"]) == 0
    assert not exists(f"{root}/data/.lock")
    config = load_config(TINY_CONFIG, [f"runtime.run_dir={root}/run", "data.source=tfrecords",
                                       f"data.tfrecord_dir={root}/data", "train.epochs=1"])
    result = train(config, make_strategy("cpu"), verbose=0)
    assert result.epochs_run == 1 and exists(result.best_checkpoint)
    with open_file(f"{root}/run/history.csv") as stream:
        assert stream.read().startswith("epoch,")
    assert tf.io.gfile.glob(f"{root}/run/tensorboard/train/events.out.tfevents.*")
    metrics = evaluate_run(f"{root}/run")
    assert 0.0 <= metrics["classification"]["auc"] <= 1.0
    assert {"metrics.json", "roc.png", "explanation_maps.npz"} <= set(storage.list_dir(f"{root}/run/eval"))
    saved = export_run(f"{root}/run")
    served = tf.saved_model.load(saved).signatures["explain"](images=tf.random.uniform([2, 40, 40, 1]))
    assert served["explanation"].shape == (2, 40, 40)
    assert export_run(f"{root}/run") == saved  # an earlier export of ours is replaced
    assert exists(f"{saved}/tfxmed_export.json") and not os.listdir(tmp_path)
