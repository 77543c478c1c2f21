"""The 3-D ResNet + CSAM against the CNN-RNN on the synthetic chest-CT benchmark (issue 15), side by side in one run.

    python scripts/benchmark_volumes.py [--config configs/volume_quickstart.yaml] [--models resnet3d cnn_rnn]
                                        [--set KEY=VALUE ...]

Each model trains the volume quick-start config with only `model.name` changed (same data, budget and
seed), is evaluated once on the test split with its default explanation chosen on validation, and
reports test AUC and ACC, the pointing game and IoU of that explanation, parameters, training seconds
and inference ms/volume. Prints JSON and writes `OUT/volumes.md`. Finished runs are reused.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _row(config_path: str, name: str, out: str, overrides: list[str]) -> dict:
    from tfxmed.commands.common import strategy_for
    from tfxmed.config import load_config
    from tfxmed.evaluation import evaluate_run, headline
    from tfxmed.training import train

    run_dir = os.path.join(out, name)
    row_path = os.path.join(run_dir, "benchmark_row.json")
    if os.path.exists(row_path):
        with open(row_path, encoding="utf-8") as stream:
            return json.load(stream)
    config = load_config(config_path, [f"model.name={name}", f"runtime.run_dir={run_dir}", *overrides])
    started = time.perf_counter()
    train(config, strategy_for(config), verbose=0)
    seconds = time.perf_counter() - started
    metrics = evaluate_run(run_dir, "test")
    figures, cost = headline(metrics), metrics["efficiency"]
    row = {"model": name, "test_auc": figures["auc"], "test_acc": figures["accuracy_uncalibrated"],
           "explanation": figures["explanation"], "pointing_game": figures["pointing_game"], "iou": figures["iou"],
           "parameters": cost["parameters"], "train_seconds": seconds,
           "inference_ms_per_volume": cost["inference_ms_per_image"]}
    with open(row_path, "w", encoding="utf-8") as stream:
        json.dump(row, stream, indent=2)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/volume_quickstart.yaml")
    parser.add_argument("--models", nargs="+", default=["resnet3d", "cnn_rnn"])
    parser.add_argument("--out", default="runs/benchmark_volumes")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    rows = [_row(args.config, name, args.out, args.overrides) for name in args.models]
    lines = ["| model | test AUC | test ACC | explanation | pointing game | IoU | parameters | training s "
             "| ms / volume |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        lines.append(f"| {row['model']} | {row['test_auc']:.3f} | {row['test_acc']:.3f} | {row['explanation']} | "
                     f"{row['pointing_game']:.3f} | {row['iou']:.3f} | {row['parameters'] / 1e6:.2f} M | "
                     f"{row['train_seconds']:.0f} | {row['inference_ms_per_volume']:.1f} |")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "volumes.md"), "w", encoding="utf-8") as stream:
        stream.write("\n".join(lines) + "\n")
    print(json.dumps({"config": args.config, "overrides": args.overrides, "models": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
