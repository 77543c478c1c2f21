"""`python -m tfxmed.demo`: the whole pipeline on the synthetic default, with a summary of artefacts.

generate → convert to TFRecords → train (ResNet50 + CSAM) → evaluate (+ Grad-CAM IoU) → export → HTML report.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Sequence

from tfxmed.cli import experiment_parser, parse_experiment, strategy_for


def main(argv: Sequence[str] | None = None) -> int:
    parser = experiment_parser("python -m tfxmed.demo", __doc__)
    args = parser.parse_args(argv)
    if args.config is None:
        args.config = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "quickstart.yaml")
    config = parse_experiment(args)
    strategy = strategy_for(config)
    from tfxmed.evaluation import evaluate_run, load_run
    from tfxmed.exporting import export_saved_model
    from tfxmed.reporting import build_report
    from tfxmed.training import train

    started = time.time()
    result = train(config, strategy)
    trained = time.time()
    metrics = evaluate_run(result.run_dir)
    _, manifest, _, model = load_run(result.run_dir)
    saved_model = export_saved_model(
        model, manifest, config.data.image_size, os.path.join(result.run_dir, "saved_model"), config.explain.layer
    )
    report = build_report(result.run_dir)
    run = os.path.abspath(result.run_dir)
    classification, localization = metrics["classification"], metrics["localization"]
    summary = {
        "test_auc": classification["auc"],
        "test_accuracy": classification["accuracy"],
        "test_sensitivity": classification["sensitivity"],
        "test_specificity": classification["specificity"],
        "gradcam_iou": localization.get("iou_mean"),
        "pointing_game": localization.get("pointing_game"),
        "gradcam_deletion_auc": localization.get("deletion_auc"),
        "gradcam_insertion_auc": localization.get("insertion_auc"),
        "train_seconds": round(trained - started, 1),
        "total_seconds": round(time.time() - started, 1),
        "artefacts": {
            "tfrecords": os.path.abspath(result.data_dir),
            "manifest": os.path.join(os.path.abspath(result.data_dir), "manifest.json"),
            "tensorboard": os.path.join(run, "tensorboard"),
            "best_checkpoint": os.path.abspath(result.best_checkpoint),
            "saved_model": os.path.abspath(saved_model),
            "metrics": os.path.join(run, "eval", "metrics.json"),
            "plots": [os.path.join(run, "eval", "roc.png"), os.path.join(run, "eval", "confusion_matrix.png")],
            "overlays": os.path.join(run, "eval", "gradcam_overlays.png"),
            "report": os.path.abspath(report),
        },
    }
    print("\n== tfxmed demo summary ==")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
