"""The converter's command line (`tfrecords_tools.convert`): a result line and exit 0, refusals as `error: ...`
with exit 2, an interruption with exit 130 and how to resume; never a traceback."""

import os

import pytest

from tfrecords_tools import convert, sources


def test_a_conversion_prints_its_counts(tmp_path, capsys):
    out = str(tmp_path / "out")
    arguments = ["synthetic", "--image-size", "32", "--train", "6", "--val", "2", "--test", "2", "--out", out,
                 "--salt", "s"]
    assert convert.main(arguments) == 0
    counts = "{'train': 6, 'val': 2, 'test': 2}"
    assert capsys.readouterr().out == f"wrote {out}: {counts}, classes ['normal', 'lesion']\n"


def test_refusals_exit_2_with_the_reason(tmp_path, capsys):
    out = tmp_path / "out"
    assert convert.main(["medmnist", str(tmp_path / "absent.npz"), "--out", str(out), "--salt", "s"]) == 2
    error = capsys.readouterr().err.splitlines()[-1]  # after the progress bar
    assert error == f"error: {tmp_path / 'absent.npz'}: no such file (expected a MedMNIST .npz)"
    combined = ["synthetic", "--out", str(out), "--tfds-metadata", "--smote", "8", "--salt", "s"]
    assert convert.main(combined) == 2
    assert capsys.readouterr().err == ("error: --tfds-metadata and --smote cannot be combined (SMOTE shards do not "
                                       "follow TFDS naming)\n")
    assert not os.path.exists(out)  # refused before anything was written
    assert convert.main(["synthetic", "--image-size", "16", "--out", str(out), "--salt", "s"]) == 2
    assert capsys.readouterr().err.endswith("error: SyntheticSpec.image_size must be an integer >= 32, got 16\n")


def test_an_interruption_exits_130_and_says_how_to_resume(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        yield 1
        raise KeyboardInterrupt

    monkeypatch.setattr(sources, "convert_synthetic", interrupted)
    out = str(tmp_path / "out")
    assert convert.main(["synthetic", "--out", out, "--salt", "s"]) == 130
    assert capsys.readouterr().err.endswith(
        f"error: interrupted; the shards finished so far are kept in {out}: re-run the same command to resume\n")


def test_an_unknown_source_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        convert.main(["dicomweb", "--out", "x"])
    assert exit_info.value.code == 2 and "invalid choice: 'dicomweb'" in capsys.readouterr().err


@pytest.mark.parametrize("encoding", ["raw", "png", "jpeg"])
def test_the_encoding_is_chosen_at_conversion_and_recorded(tmp_path, encoding):
    import tensorflow as tf

    from tfxmed.data import features
    from tfxmed.storage import load_manifest

    out = str(tmp_path / encoding)
    assert convert.main(["synthetic", "--image-size", "32", "--train", "4", "--val", "2", "--test", "2", "--out", out,
                         "--salt", "s", "--encoding", encoding]) == 0
    manifest = load_manifest(out)
    assert manifest["encoding"] == encoding
    record = next(iter(tf.data.TFRecordDataset(os.path.join(out, manifest["splits"]["train"]["shards"][0]["file"]))))
    stored = tf.train.Example.FromString(record.numpy()).features.feature
    assert stored[features.FORMAT].bytes_list.value[0].decode() == encoding if encoding != "png" else \
        features.FORMAT not in stored
    assert features.parse(record, 2, 1)["image"].shape == (32, 32, 1)


def test_tfds_metadata_needs_png_records(tmp_path, capsys):
    arguments = ["synthetic", "--image-size", "32", "--out", str(tmp_path / "o"), "--tfds-metadata",
                 "--encoding", "raw"]
    assert convert.main(arguments) == 2
    assert "--tfds-metadata describes PNG images; --encoding raw cannot be read by TFDS" in capsys.readouterr().err
