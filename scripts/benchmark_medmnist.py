"""The generic MedMNIST recipe on a real MedMNIST `.npz`, 3 seeds, next to the published MedMNIST v2 table.

    python scripts/benchmark_medmnist.py --data ../shared/data/pneumoniamnist.npz [--seeds 0 1 2]

Each seed trains `configs/medmnist.yaml` unchanged (model and threshold selection on val only), then
evaluates once on the official test split: AUC with a bootstrap 95% CI, accuracy at argmax (the
MedMNIST protocol) and at the Youden threshold chosen on val. Prints JSON with the per-seed rows,
mean ± sd, training wall time per seed and the published figures. Finished seeds are reused.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

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


def _run_seed(recipe: str, data: str, seed: int, out: str, overrides: list[str], strategy_name: str | None) -> dict:
    from tfxmed.commands.common import strategy_for
    from tfxmed.config import load_config
    from tfxmed.evaluation import evaluate_run
    from tfxmed.training import train

    run_dir = os.path.join(out, f"seed-{seed}")
    row_path = os.path.join(run_dir, "benchmark_row.json")
    if os.path.exists(row_path):
        with open(row_path, encoding="utf-8") as stream:
            return json.load(stream)
    config = load_config(recipe, [f"data.npz={data}", f"runtime.seed={seed}", f"runtime.run_dir={run_dir}", *overrides,
                                  *([f"runtime.strategy={strategy_name}"] if strategy_name else [])])
    started = time.perf_counter()
    result = train(config, strategy_for(config), verbose=0)
    train_seconds = time.perf_counter() - started
    metrics = evaluate_run(run_dir, "test")  # the only time this seed touches the test split
    report, youden = metrics["classification"], metrics["classification_at_validation_threshold"]
    row = {
        "seed": seed, "train_seconds": train_seconds, "epochs": result.epochs_run, "best_val_auc": result.best_val_auc,
        "test_auc": report["auc"], "test_auc_ci95": report["auc_ci"], "test_acc": report["accuracy"],
        "test_acc_youden_val": youden["report"]["accuracy"] if youden else None,
        "youden_threshold": youden["threshold"] if youden else None,
    }
    with open(row_path, "w", encoding="utf-8") as stream:
        json.dump(row, stream, indent=2)
    return row


def _mean_sd(rows: list[dict], key: str) -> dict | None:
    values = [row[key] for row in rows if row[key] is not None]
    return mean_sd(values) if values else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="MedMNIST .npz (e.g. ../shared/data/pneumoniamnist.npz)")
    parser.add_argument("--recipe", default="configs/medmnist.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default=None, help="default runs/benchmark_medmnist/<npz stem>")
    parser.add_argument("--strategy", default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    if not os.path.isfile(args.data):
        print(json.dumps({"error": f"{args.data}: no such file"}))
        return 2
    stem = os.path.splitext(os.path.basename(args.data))[0].lower()
    out = args.out or os.path.join("runs", "benchmark_medmnist", stem)
    rows = [_run_seed(args.recipe, args.data, seed, out, args.overrides, args.strategy) for seed in args.seeds]
    summary = {key: _mean_sd(rows, key) for key in ("test_auc", "test_acc", "test_acc_youden_val", "train_seconds")}
    import tensorflow as tf

    print(json.dumps({
        "dataset": stem, "recipe": args.recipe, "overrides": args.overrides, "seeds": rows, "mean_sd": summary,
        "published_test_auc_acc": PUBLISHED.get(stem, "not tabulated here"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "tensorflow": tf.__version__,
                    "gpus": len(tf.config.list_physical_devices("GPU"))},
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
