"""The generic MedMNIST recipe on a real MedMNIST `.npz`, 3 seeds, next to the published MedMNIST v2 table.

    python scripts/benchmark_medmnist.py --data ../shared/data/pneumoniamnist.npz [--seeds 0 1 2] [--train-subset 500]

Each seed trains `configs/medmnist.yaml` unchanged (model and threshold selection on val only), then
evaluates once on the official test split: AUC with a bootstrap 95% CI; accuracy at the model's argmax
(the MedMNIST protocol), at the argmax of the calibrated probabilities (the decision a Platt bias
fitted on val moves) and at the Youden threshold chosen on val; the test ECE before and after the
calibration fitted on val. Prints JSON with the per-seed rows, mean ± sd, training wall time per seed,
the seeds whose validation AUC lags the others (`val_outliers`: more than 0.02 below the median; visible,
not averaged away) and the published figures. Finished seeds are reused.

`--train-subset N` trains on a stratified random subset of N training images (fixed seed 0, the same
subset for every run seed); validation and test are the official splits, unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfxmed.metrics.statistics import mean_sd  # noqa: E402

# MedMNIST v2 (Yang et al., Scientific Data 2023), Table: test AUC / ACC.
PUBLISHED = {
    "pneumoniamnist": {
        "ResNet-18 (28)": (0.944, 0.854), "ResNet-18 (224)": (0.956, 0.864),
        "ResNet-50 (28)": (0.948, 0.854), "ResNet-50 (224)": (0.962, 0.884),
        "auto-sklearn": (0.942, 0.855), "AutoKeras": (0.947, 0.878), "Google AutoML Vision": (0.991, 0.946),
    },
}


VAL_OUTLIER_GAP = 0.02  # a seed whose best validation AUC is this far below the median is flagged


def train_subset(data: str, size: int, out: str) -> str:
    """A copy of `data` whose training split is a stratified random subset of `size` images (seed 0)."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    path = os.path.join(out, f"train-subset-{size}.npz")
    if os.path.exists(path):
        return path
    with np.load(data) as arrays:
        splits = {key: arrays[key] for key in arrays.files}
    labels = splits["train_labels"]
    if not 0 < size < len(labels):
        raise SystemExit(f"--train-subset {size}: must be in (0, {len(labels)}), the training split's size")
    strata = labels[:, 0] if labels.ndim == 2 and labels.shape[1] == 1 else None  # multi-label: unstratified
    chosen, _ = train_test_split(np.arange(len(labels)), train_size=size, stratify=strata, random_state=0)
    splits["train_images"], splits["train_labels"] = splits["train_images"][chosen], labels[chosen]
    os.makedirs(out, exist_ok=True)
    np.savez(path + ".tmp.npz", **splits)
    os.replace(path + ".tmp.npz", path)
    return path


def val_outliers(rows: list[dict]) -> list[int]:
    """Seeds whose best validation AUC is more than VAL_OUTLIER_GAP below the median of all seeds."""
    import numpy as np

    values = [row["best_val_auc"] for row in rows if row["best_val_auc"] is not None]
    if len(values) < 2:
        return []
    median = float(np.median(values))
    return [row["seed"] for row in rows if row["best_val_auc"] is not None
            and row["best_val_auc"] < median - VAL_OUTLIER_GAP]


def _run_seed(recipe: str, data: str, seed: int, out: str, overrides: list[str], strategy_name: str | None) -> dict:
    from tfxmed.commands.common import strategy_for
    from tfxmed.config import load_config
    from tfxmed.evaluation import evaluate_run, headline
    from tfxmed.training import train

    run_dir = os.path.join(out, f"seed-{seed}")
    row_path = os.path.join(run_dir, "benchmark_row.json")
    if os.path.exists(row_path):  # a finished seed is reused only if it ran what is asked now
        with open(row_path, encoding="utf-8") as stream:
            row = json.load(stream)
        if row.get("overrides", overrides) != overrides:
            raise SystemExit(f"{row_path}: this seed finished with overrides {row['overrides']}, not {overrides}; "
                             "pass another --out or remove that run")
        return row
    config = load_config(recipe, [f"data.npz={data}", f"runtime.seed={seed}", f"runtime.run_dir={run_dir}", *overrides,
                                  *([f"runtime.strategy={strategy_name}"] if strategy_name else [])])
    result = train(config, strategy_for(config), verbose=0)
    train_seconds = result.train_seconds  # a resumed seed's killed attempt included
    metrics = evaluate_run(run_dir, "test")  # the only time this seed touches the test split
    report, youden = metrics["classification"], metrics["classification_at_validation_threshold"]
    figures = headline(metrics)
    row = {
        "seed": seed, "overrides": overrides, "train_seconds": train_seconds, "epochs": result.epochs_run,
        "best_val_auc": result.best_val_auc,
        "test_auc": report["auc"], "test_auc_ci95": report["auc_ci"],
        "test_acc": figures["accuracy_uncalibrated"],  # the model's argmax: the MedMNIST protocol
        "test_acc_calibrated": report["accuracy"],  # argmax of the calibrated probabilities (moves with a bias)
        "test_acc_youden_val": youden["report"]["accuracy"] if youden else None,
        "youden_threshold": youden["threshold"] if youden else None,
        "test_ece_uncalibrated": figures["ece_uncalibrated"], "test_ece": figures["ece"],
    }
    with open(row_path, "w", encoding="utf-8") as stream:
        json.dump(row, stream, indent=2)
    return row


def _mean_sd(rows: list[dict], key: str) -> dict | None:
    values = [row[key] for row in rows if row.get(key) is not None]
    return mean_sd(values) if values else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="MedMNIST .npz (e.g. ../shared/data/pneumoniamnist.npz)")
    parser.add_argument("--recipe", default="configs/medmnist.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default=None, help="default runs/benchmark_medmnist/<npz stem>")
    parser.add_argument("--strategy", default=None)
    parser.add_argument("--train-subset", type=int, default=0, metavar="N",
                        help="train on a stratified random subset of N training images (val and test unchanged)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    if not os.path.isfile(args.data):
        print(json.dumps({"error": f"{args.data}: no such file"}))
        return 2
    stem = os.path.splitext(os.path.basename(args.data))[0].lower()
    out = args.out or os.path.join("runs", "benchmark_medmnist",
                                   stem + (f"-train{args.train_subset}" if args.train_subset else ""))
    data = train_subset(args.data, args.train_subset, out) if args.train_subset else args.data
    rows = [_run_seed(args.recipe, data, seed, out, args.overrides, args.strategy) for seed in args.seeds]
    keys = ("test_auc", "test_acc", "test_acc_calibrated", "test_acc_youden_val", "train_seconds",
            "test_ece_uncalibrated", "test_ece", "best_val_auc")
    summary = {key: _mean_sd(rows, key) for key in keys}
    import tensorflow as tf

    print(json.dumps({
        "dataset": stem, "train_subset": args.train_subset, "recipe": args.recipe, "overrides": args.overrides,
        "seeds": rows, "mean_sd": summary, "val_outliers": val_outliers(rows),
        "published_test_auc_acc": PUBLISHED.get(stem, "not tabulated here"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "tensorflow": tf.__version__,
                    "gpus": len(tf.config.list_physical_devices("GPU"))},
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
