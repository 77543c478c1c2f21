import numpy as np

from tfrecords_tools import sources
from tfrecords_tools.inspect import dataset_statistics, main
from tfxmed.storage import load_manifest


def test_statistics_match_the_manifest_and_cooccurrence_is_consistent(tmp_path, capsys):
    out = str(tmp_path / "ml")
    sum(sources.convert_synthetic(out, image_size=32, counts={"train": 40, "val": 8, "test": 8}, multi_label=True,
                                  shard_examples=16, salt="s"))
    manifest = load_manifest(out)
    report = dataset_statistics(out, str(tmp_path / "grid.png"), samples=6)
    for split, info in manifest["splits"].items():
        assert report["splits"][split]["count"] == info["count"]
        assert report["splits"][split]["per_class"] == info["class_counts"]
        assert report["splits"][split]["with_mask"] == info["with_mask"]
    matrix = np.array(report["train_cooccurrence"]["matrix"])
    assert np.array_equal(matrix, matrix.T)
    counts = manifest["splits"]["train"]["class_counts"]
    assert matrix.diagonal().tolist() == [counts[n] for n in manifest["class_names"]]
    assert (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG"

    assert main([out, "--grid", str(tmp_path / "cli.png")]) == 0
    printed = capsys.readouterr().out
    assert "co-occurrence" in printed and "train" in printed and str(manifest["splits"]["train"]["count"]) in printed
    assert main([str(tmp_path / "absent")]) == 2
