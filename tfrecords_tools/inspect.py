"""`python -m tfrecords_tools.inspect DIR [--grid samples.png] [--n 16]`: what a converted dataset holds.

Prints counts per split and class (with masks and synthetic samples), the training μ/σ, k-fold sizes and,
for multi-label data, the label co-occurrence matrix of the training split (from the records themselves,
so a manifest that disagrees with its shards shows up). Writes a grid of sample images (masks outlined).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

import numpy as np

from tfxmed.storage import atomic_path

__all__ = ["dataset_statistics", "main"]


def dataset_statistics(data_dir: str, grid_path: str | None = None, samples: int = 16) -> dict:
    """Counts, μ/σ, folds and co-occurrence of a TFRecord folder; optionally a sample grid PNG."""
    import tensorflow as tf

    from tfxmed.data import features
    from tfxmed.storage import load_manifest

    manifest = load_manifest(data_dir)
    names, classes = manifest["class_names"], manifest["num_classes"]
    report = {"dataset": manifest["dataset"], "class_names": names, "multi_label": manifest["multi_label"],
              "channels": manifest["channels"], "pixel_mean": manifest["pixel_mean"],
              "pixel_std": manifest["pixel_std"], "splits": {}}
    shown: list[tuple[np.ndarray, np.ndarray, str]] = []
    for split, info in manifest["splits"].items():
        labels, folds, with_mask, synthetic = [], [], 0, 0
        files = [os.path.join(data_dir, shard["file"]) for shard in info["shards"]]
        for raw in tf.data.TFRecordDataset(files):
            example = features.parse(raw, classes, manifest["channels"])
            labels.append(example["label"].numpy())
            folds.append(int(example["fold"]))
            with_mask += int(example["has_mask"])
            synthetic += int(example["synthetic"])
            if len(shown) < samples and (split == "train" or not shown):
                caption = ",".join(n for n, v in zip(names, labels[-1]) if v > 0.5) or "none"
                shown.append((example["image"].numpy(), example["mask"].numpy(), f"{split}: {caption}"))
        matrix = np.array(labels, np.float32).reshape(-1, classes)
        entry = {"count": len(matrix), "per_class": dict(zip(names, matrix.sum(0).astype(int).tolist())),
                 "with_mask": with_mask, "synthetic": synthetic}
        if any(f >= 0 for f in folds):
            entry["folds"] = {str(k): folds.count(k) for k in sorted(set(folds)) if k >= 0}
        if manifest["multi_label"] and split == "train":
            binary = (matrix > 0.5).astype(np.int64)
            report["train_cooccurrence"] = {"classes": names, "matrix": (binary.T @ binary).tolist()}
        report["splits"][split] = entry
    if grid_path and shown:
        _grid(grid_path, shown)
        report["grid"] = grid_path
    return report


def _grid(path: str, shown) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = 4
    rows = int(np.ceil(len(shown) / columns))
    figure = Figure(figsize=(2.2 * columns, 2.3 * rows))
    FigureCanvasAgg(figure)
    for index, (image, mask, caption) in enumerate(shown):
        axis = figure.add_subplot(rows, columns, index + 1)
        axis.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray")
        if mask.max() > 0:
            axis.contour(mask[..., 0], [127], colors="red", linewidths=0.8)
        axis.set_title(caption[:32], fontsize=7)
        axis.axis("off")
    figure.tight_layout()
    with atomic_path(path, ".png") as temporary:
        figure.savefig(temporary, dpi=90)


def _print_table(report: dict) -> None:
    names = report["class_names"]
    print(f"{report['dataset']}: {len(names)} classes, {'multi-label' if report['multi_label'] else 'single-label'}, "
          f"{report['channels']} channel(s); train μ={np.round(report['pixel_mean'], 4).tolist()} "
          f"σ={np.round(report['pixel_std'], 4).tolist()}")
    width = max(len(n) for n in [*names, "split"]) + 2
    print("split".ljust(10) + "count".rjust(8) + "masks".rjust(8) + "".join(n[:12].rjust(14) for n in names))
    for split, entry in report["splits"].items():
        print(split.ljust(10) + str(entry["count"]).rjust(8) + str(entry["with_mask"]).rjust(8)
              + "".join(str(entry["per_class"][n]).rjust(14) for n in names))
    if "train_cooccurrence" in report:
        print("\ntrain label co-occurrence (images with both):")
        print("".ljust(width) + "".join(n[:10].rjust(12) for n in names))
        for name, row in zip(names, report["train_cooccurrence"]["matrix"]):
            print(name.ljust(width) + "".join(str(v).rjust(12) for v in row))


def main(argv: Sequence[str] | None = None, prog: str = "python -m tfrecords_tools.inspect") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("data_dir")
    parser.add_argument("--grid", default=None, help="sample grid PNG (default DIR/samples.png)")
    parser.add_argument("--n", type=int, default=16, help="images in the grid")
    parser.add_argument("--json", action="store_true", help="print the statistics as JSON instead of a table")
    args = parser.parse_args(argv)
    try:
        report = dataset_statistics(args.data_dir, args.grid or os.path.join(args.data_dir, "samples.png"), args.n)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report))
    else:
        _print_table(report)
        print(f"\nsample grid: {report.get('grid')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
