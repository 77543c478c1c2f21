"""Does averaging a left-right mirror into the predictions help? A validation-only look at finished runs.

    python scripts/probe_tta.py runs/benchmark_medmnist/s10-full/seed-* [--split val]

For each run, its best checkpoint predicts the split twice: as it is, and with test-time augmentation
(the mean of the probabilities of each image and of its left-right mirror; the recipes train with
`data.flip_left_right`). Both are scored by AUC, ACC at argmax and NLL, before any calibration (the
calibration is fitted on these same validation images). Prints JSON: the rows per run and, over runs,
the mean ± sd of the paired differences (with − without) and how many runs each metric improved in.
Reads the chosen split only (validation by default): no test split.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from tfxmed.metrics.statistics import mean_sd  # noqa: E402

HIGHER_IS_BETTER = {"auc": True, "accuracy": True, "nll": False}
EPSILON = 1e-7


def predictions(model, images: np.ndarray, batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """The model's probabilities for [N, H, W, C] images, and their mean with those of the left-right mirrors."""
    plain = np.asarray(model.predict(images, batch_size=batch_size, verbose=0), np.float64)
    mirrored = np.asarray(model.predict(images[:, :, ::-1], batch_size=batch_size, verbose=0), np.float64)
    return plain, (plain + mirrored) / 2.0


def scores(labels: np.ndarray, probabilities: np.ndarray, multi_label: bool) -> dict:
    """AUC (the report's definition), ACC at argmax (single-label) and the mean negative log-likelihood."""
    from tfxmed.metrics.classification import report_auc

    p = np.clip(np.asarray(probabilities, np.float64), EPSILON, 1.0 - EPSILON)
    if multi_label:  # labels of -1 are not scored (metric_labels)
        scored = labels >= 0
        nll = -np.sum(np.where(scored, labels * np.log(p) + (1 - labels) * np.log(1 - p), 0.0)) / scored.sum()
        accuracy = None
    else:
        nll = -np.mean(np.log(p[np.arange(len(labels)), labels]))
        accuracy = float(np.mean(np.argmax(p, axis=-1) == labels))
    return {"auc": float(report_auc(labels, probabilities, multi_label)), "accuracy": accuracy, "nll": float(nll)}


def probe(run_dir: str, split: str = "val") -> dict:
    """One run: its split's scores without and with the mirrored mean."""
    from tfxmed.evaluation import collect_split, metric_labels
    from tfxmed.runs import load_run

    run = load_run(run_dir)
    if split not in run.manifest["splits"]:
        raise SystemExit(f"{run_dir}: its dataset has no '{split}' split (it has {sorted(run.manifest['splits'])})")
    data = collect_split(run.data_dir, run.manifest, run.config, split)
    if data["image"].ndim != 4:
        raise SystemExit(f"{run_dir}: a left-right mirror needs [N, H, W, C] images; got shape {data['image'].shape}")
    multi_label = run.manifest["multi_label"]
    labels = metric_labels(data, multi_label)
    plain, mirrored_mean = predictions(run.model, data["image"])
    return {"run_dir": run_dir, "split": split, "images": int(len(labels)),
            "without": scores(labels, plain, multi_label), "with": scores(labels, mirrored_mean, multi_label)}


def summarise(rows: list[dict]) -> dict:
    """Per metric over runs: the paired difference (with − without), mean ± sd, and the runs it improved in."""
    summary = {}
    for metric, higher in HIGHER_IS_BETTER.items():
        pairs = [(row["without"][metric], row["with"][metric]) for row in rows if row["without"][metric] is not None]
        if not pairs:
            continue
        differences = [after - before for before, after in pairs]
        summary[metric] = {"difference": mean_sd(differences),
                           "improved_in": sum((d > 0) if higher else (d < 0) for d in differences),
                           "runs": len(pairs)}
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="finished run directories")
    parser.add_argument("--split", default="val", help="the split to read (default: val; keep test out of choices)")
    args = parser.parse_args()
    rows = [probe(run_dir, args.split) for run_dir in args.runs]
    print(json.dumps({"runs": rows, "summary": summarise(rows)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
